# ruff: noqa: SIM905  (whitespace-separated word blocks read better than 5,000 list items)
"""Word lists for the generated sequence tasks (docs/method.md §2). Facts, not code.

Provenance: the vocabularies observed in the paper's released task files (data/paper/source,
{train,val}_{animals,colors,countries,english_words}.jsonl), which the authors built from their own
lists. They are shipped here so that the product builds its data offline.
"""

# The paper's 30 animals (animals_long: 7-10 sampled with replacement).
ANIMALS: tuple[str, ...] = tuple(
    """
bear cat chicken cow deer dog duck elephant fish fox frog giraffe goat horse kangaroo lion
lizard mouse panda pig rabbit rat shark sheep snake squirrel tiger turtle wolf zebra
""".split()
)

# The paper's colour list, lowercased. Its 100 entries hold 97 distinct colours (the released
# strings contain repeated colours, so the original list has duplicates); we keep the 97.
COLORS: tuple[str, ...] = tuple(
    """
amber apricot aquamarine ash azure beige bisque black blue brass bronze brown burgundy canary
cayenne celadon cerulean champagne charcoal chartreuse chestnut cobalt coral cornflower cream
crimson dandelion denim ebony eggplant emerald flax forest fuchsia glacier gold gray green
gunmetal honeydew indigo ivory khaki lavender lilac lime magenta mahogany mango marigold maroon
mauve midnight mint moss mulberry mustard navy ochre olive orange orchid peach pearl periwinkle
pewter pink pistachio plum puce pumpkin purple red rose ruby rust saffron sage salmon sangria
sapphire scarlet sepia sienna silver sky slate tan tangerine taupe teal terracotta turquoise
vermilion white wisteria yellow
""".split()
)

# The paper's single-word country names, lowercased (104; its list stops at 'romania').
COUNTRIES: tuple[str, ...] = tuple(
    """
afghanistan albania algeria angola argentina australia austria azerbaijan bangladesh belarus
belgium benin bhutan bolivia botswana brazil bulgaria burundi cambodia cameroon canada chad
chile china colombia comoros croatia cuba cyprus denmark djibouti ecuador egypt eritrea estonia
ethiopia fiji finland france gabon georgia germany ghana greece grenada guatemala guinea guyana
haiti honduras hungary iceland india indonesia iran iraq ireland israel italy jamaica japan
jordan kazakhstan kenya kiribati kuwait laos latvia lebanon lesotho liberia libya lithuania
luxembourg madagascar malawi malaysia maldives mali malta mexico moldova mongolia montenegro
morocco mozambique myanmar namibia nepal netherlands nicaragua niger nigeria norway oman
pakistan panama paraguay peru philippines poland portugal qatar romania
""".split()
)

# 5,000 words drawn (random.Random(0).sample, then sorted) from the 54,833 distinct words of the
# paper's english_words_long files, which the paper sampled from the NLTK `words` corpus (mostly
# rare dictionary words and some capitalised proper nouns, as in the original task).
ENGLISH_WORDS: tuple[str, ...] = tuple(
    """
aardwolf Abadite abdicate Abdiel abet abietene abiogenetically able Abner abneural abnormality
Abrahamitic abristle abrogative absinthiate Acalyptrata acanthology acanthon Acanthopanax
acatharsy acceptedly Accipiter accipitral acclimatizer accompletive accoucheur accountableness
accounting accoy accreditment accubation accumbent acervately acetamide acetonaphthone
Acherontic achilary achira Achomawi acology acopyrin acquisition Acridium acroaesthesia
acrodynia acronyc acrophony Acrotretidae actionize Acubens aculeiform acutonodose acylation
adamantoid Adamical adderfish addictedness adductor Adelbert Adelphi adenocancroid adet
adhesively adiathermanous adjutage admarginate admiredly admonishingly Adrian Adrienne
adscititiously Adullam adultoid aduncous adversatively advisee Aeginetic aegyptilla aerocurve
aerograph aerographics aeropleustic aeroscopic aeroscopically aerotropic affinal afforestable
affronter Afrasian aftercare afterdeck afterend afterward agamogenetic agaricin agential
agglomeration agglutinable aggressive agio agiotage agnoiology agomensin Agrostemma ahong
ahungry Aias aiming airmark airwayman aithochroi Aitkenite ake alban albatross Albertina
albugineous Alcoranist aldeament aldermanly aleak alec alecize Aleurodidae alexipyretic Algedi
algedonic Alicant Alice alismal alkine allegorically allelotropic allelotropism allerion
alloquialism allorhythmia allotropic allowably alloxanate allseed almandite Alpax Alphonsism
Althea altingiaceous altricial aluminographic alveolectomy alymphopotent amalgamation Amarantus
ambalam Ambrosian ambsace amene amiability amissness amlikar amnionate amniotic Amomis
amorphophyte Amos amphithecial ample amplificator amuletic amyotrophia Amyridaceae
anacamptometer anacoluthically anaerobically anaesthesia analcime analgia analysand anandrarious
Anapterygota anarchic anatomicochirurgical anchorable anchoretical anchoritish ancientness
Ancylostoma Andrena anesis anesthetically angiocarpian angiolipoma angiomatous angry animize
anisamide anisocercal anisogamete anisotropal ankylophobia ankylopodia ankylose anna annat
annulation annulet annulment annulosan Anoplotherium anorth anorthite anorthography anosphresia
ansate answerable antagonize antagonizer antalgesic antarctical antefuture antennula
anteoperculum anteposition anteprohibition antheroid anthography anthozoan Anthropoidea
antibiotic antibridal anticaste anticness antidiabetic antidotism antiepiscopal antilogical
antimodel antimonarchicalness antinode antiopelmous antiphysical antipreparedness antiprotozoal
antirestoration antitetanic antitropous antitype Antlid antonomasia anyway aphetize aphorismos
aphrodisia apically apices apocinchonine apodous apogeic apostrophize apothecal
Appendiculariidae appendix applauder apple appleroot applique apply apprenticehood Aprilesque
Aprilis apsis aquacade aquage aquiculture arbitrament arbitrational arbitratorship archaistic
archdeanery Archeozoic archiblastic archicleistogamy architis architypographer archoplasmic
archrepresentative archsnob Arcturus Ardisia Areca Areopagite areroscope Argasidae argillaceous
argumentation Argus argyrite aristocraticalness aristocratism arithmetician arjun arock
aromacity arquifoux arsenicophagy arsenism arshine arsonite artal artfully Artgum arthrobranchia
arthrodire arthromeric artiness artiodactylous artistic ascian Ashkenazic Ashkenazim Asian
asimmer Aspidocephali aspiratory aspout asprawl assary assented assessably assiduously assist
assistance assonantic astonishing astromancy astronomic Astrophyton Atacaman atechnic Athapascan
atheromatous athreptic atlatl atmiatry atmos atomistics atriopore atrochous atrorubent Atticist
attributable attritive audaciousness audile August aulostomid aumail auriculariae auriculated
aurotellurite aurous authorism authority autoagglutination autodecomposition autogenetic
automobilism autopilot autopoint autoschediaze autosymbiontic autotomize autotoxis autotropism
auxiliar auxocardia auxospore avengeful aviatorial awheel awink awkwardness awoke axman
axonolipous ayenbite azoxybenzene Babylonize bacca bacillariaceous Bacillariales bacillian
backflap backflash backhandedly backrun backslap backswept backway Baconic bacterially
Bacteroides badgerbrush Baggara bagleaves bagre bailee bailiery Bakairi baken bakupari
Balaenoptera balanorrhagia balladmonger ballastage ballotage ballup balsam Bananalander bandboxy
banditism banefulness banjore bankside banstickle Bantoid baptizee barbarianism barbwire bardess
bardie bareheaded bargh baria barkeeper barman barogram barometrically barrelwise Bartlett
Baruch basale base bashaw basialveolar basiarachnitis basichromatin basilary basilyst Bassalian
Batta battailous battledore bauson beachlamar beaconless beadman beatinest beatster bebathe
bebloom beboss beclatter becrowd becuna bedevilment bedfellowship bedrowse beeishness beekeeping
beerbibber begani beggarer Begoniaceae bekko Bellona bemantle bemusk beneaped benedictively
benefactor Benelux benet benightmare benzotrifuran bepuddle Berliner berrugate besit besmile
besognier bespatterment best bester bettermost betutor betweenbrain bewaitered beylic bezoardic
bhangi biannually bibi bibliograph bibliographical bicalcarate bidri bien bifanged biferous
bifolium biformed biharmonic bilaterality bilharzial bilineate bilinguist bilith billposter
bilobular bimeby bindle biogeography biographical bioplast biplane birectangular birlinn
birthland bisacromial bisexed bismutoplagionite bister bisymmetrically bitted bitulithic biunity
blackback blackberry blackcock blackening bladder bland blandiloquous blarney blastema
blastogeny blaver blendure Blephillia bless blet blinker blithesomeness blizz blore blottesque
bluetongue blushing boatage boatman boatshop bobbery bodach bodikin bohea bohor boke Bolboxalis
bollworm bolometer bondage bondswoman boniform bonneter bony boomdas bootmaking booze boracic
boroglyceride both bouffancy bouldery bounceably boundable Bourout boxmaker boysenberry braca
brachycephalize braider brainsick braireau Branchellion brandywine brassbound brasswork
bratticer braving brawlingly brazenfaced brazil breastrail brelaw brickwise bridebowl bridged
bridgeway bridoon brigandage brilliancy brimborium brinehouse brinish brocho brodequin
bronchiolus bronzitite broodling brooked brooky Brunswick bryophytic Bryozoa bubinga buchu
bucketmaker budlet bulky bullwhack bullwort bummock Bundeli Bungarus bunglingly bunoselenodont
burgheress burgrave burntweed burny burseed bushfighter Bushongo bushranging Busycon butlery
cacoepist cacoon cadus Cadwallader caffeism caffoy cag Cagn cailcedra cairned cajuputene
cajuputol Cakavci calangay Calculagraph Caleb calendal caliology calorimetry calycozoan camail
camera Camorrist campground Camptosorus Canaanitess Canacee canaille Canarium candlelight
candleshrift candymaking cankerberry cantharis cantonal cantrip capacitation capernoited
capitulation Caprimulgus capryl captor Capuan Caquetio carbamino carcel carcinological
cardiogenic cardiographic Carex carga cariacine Carica Caricaceae caronic Carpathian carpetwoven
carunculous caseful casern casing castrametation catabiotic catastrophic catastrophist catatonia
catchup catelectrotonic caterpillar catsup cattail caudodorsal caulerpaceous causeless causse
cautelousness cavernously cavicorn cavy ceasmic cecidomyian Cecomorphae celotomy Celsia
celtiform celtuce cementatory censerless centralistic centranth Centricae centronucleus
cephaeline Cephalocereus cephalometer ceration ceratohyoid Ceratospongiae cerebrogalactose
cerebropathy ceremoniously ceroplasty certifiableness certiorari certosino Cetonia chaetosema
chai chalcidid chalcomancy chalcone chalcophanite Chaldaic chamfron chancroidal changedness
chaperno characteristical Charles charmingness chartreuse charuk charwoman chasmogamy chattel
checkerbelly cheilitis cheirosophy Chelydidae chemosmotic chiliastic chinamaniac chincha chingma
chinoa chirr Chitimacha chitinization chlordane choana cholecystojejunostomy choledochotomy
choloscopy choosable choregy chowchow Christlikeness chromatoid chromatosphere chromdiagnosis
chromidial chromograph chromophotography chromoplastid chromotherapy chrysocarpous chrysopoeia
chulan churchful ciclatoun cilectomy ciliary ciliation cinematographical cinquecentist
circularization circumconic circumflect circummure cirurgian citrus civilizee Cladocera
Cladoselachea claim clamantly clammyweed clamor clamorously clamper clanking clasmatosis classer
clayware cleidomancy Clerus clethraceous climatologic clinoid clinopinacoidal clitia clodlet
clogdogdo cloisterlike clothesline cloudology clout clubstart clue clypeolar coax cobaea cobbly
cobourg coccygean coconsciousness coempt coemptive coenenchym coenoecic coequality coequalize
coeternally cognizability cognize coguardian cohabitation cohobator coincidental coindwelling
coinspire collaboratively collard collectress collenchymatic colloquial colonnade colophony
colpocele columbate columnist comaker comber combinate combinational comenic comfit Comiakin
Commelinaceae commune companionably comparate complementative complicity comprehensibility
comprisal conceptus concerted concoctor concreteness concupiscent conducing conflux coniceine
conicopoly conjunctural conquinamine consecrative consentful conservatism conspicuity
constipation constituently constringe consummative consute contextually Continentalize
contraindicate contrariety contrascriptural contumacity conusance conversationally
convertibleness cook coolen Coorg cooruptibly cophosis copperytailed copplecrown coprosterol
copularium copurchaser coque coquettish corallic Corallorhiza cordaitaceous Cordovan cordwainer
corector corf Coriandrum corncrusher cornerpiece corodiary corporationism corpus cortez
corticous Cory Coryphodon Coscinodiscus cossas cosuffer cottier counterargue counterassertion
counterbattery counterimagination counterraid counterscalloped countersconce countervengeance
courtcraft coutel cover coverage cowgate coxa coxalgic crabbery crabstick crabwood crackbrained
cradleland Crambinae craniomaxillary creamfruit creatural crebrisulcate credential creodont
creosol crepitus cressy Cricetidae Cris critch criterional criticizingly crocodilite crossbeak
crosscutter crower cruth cryable Cryptoglaux cryptophyte Cryptozonia crystallitis
crystallochemistry crystoleum Ctenodus cubometatarsal cucurbit cudgerie Cujam culturization
cumal cumuliform cunningly cupbearer cupholder curing curiologics curiousness curmurring curple
currency Curtana curvinerved cuspule customary cutty Cyanastraceae Cyanophyceae cycadlike
cyclostyle Cygnid cylindraceous cymbal Cyrtomium cystoma cystomorphous cytoproct cytotrophoblast
czaric dacoity dactylioglyphic daduchus daglock daincha dal Dalea Dalradian Damascene Dane
dardanium daredevil das Dashnaktzutiun Dasiphora dasypodoid datiscetin Daubentonia dayberry
dazingly deamidase debarkment debride decadarchy decadation decaffeinate decapodiform
decempedate decenary decennoval decimalization decisional decking decolour decorticator
decrescendo deculturate deducibleness deduction deepen defiantly definable definedly deflation
deflex deflexion deformative defoul defunctionalize deglycerin dehull deinos deionize deletion
delf dendrobe denominational densher deoxidizer dephosphorize depreciatively dermatography
dermatomyoma dermatophone dermatophony dermobranchiate dermolysis descantist Deschampsia
designing desilicification desiringly desmid desmitis desocialization desolatingly Despotes
detachableness detectaphone detectible deterrent deuced devaluation developedness developmentary
deviationism devilship devitrify devouringly devoutness dewiness dhole dhunchee diaclinal
diagnosis diaphragmatically diapyetic diarsenide diastaltic diastase diastral diathermaneity
Dibothriocephalus dichotomistic dichromic Dick dicotylous dictyotic dicycle diferrion diffame
differentially differentiator diglottism dignifiedness diiodide dikaryophytic Dikelocephalus
Dilantin dilatedly dimyarian dinky diosmotic Dipsacaceae dipterology directitude directorial
dirgler dirty disadvise disanimate disapparel disarmingly disasinize disattune discography
discolored disconjure discontented discontentedness discontentment Discophora discoplacental
discountenance discreate discrepate discretionary discrimination discussable disequalizer
disequilibration disestablish disgorge disguisable disguise disillusion disimpark disinfectant
dislocated dismissible dismissive disnaturalize disobedience dispireme disproportionable
disquietedness disquiparation disquisitive dissimulate dissogony dissyllabize distance
distemperedly distinct distinguished distraction distrust distruster disyoke dithioglycol
Docetist doctrinate dodgery dogbolt doggerelist dogy doited dolcino domy doodab doormaid
dopebook Dorine dorsicollar dorsoradial dorsoventrad dossel doublelunged doughmaking downrushing
downshore dowry dowsabel drainer dreamfully dreamfulness drear drearisome driftingly drogue
Dromaeognathae druery drumloid Dryophyllum ducal ductilize due dufrenoysite duhat Dulcin dulse
dult dump dumpy dungol duopsony duplicident Durango durity dynamize Dynastinae dysfunction
dyssynergia dysyntribite easterly ebenaceous ebullitive ecardinal eccentrometer echeneidoid
echinochrome Echinorhynchus ecphonesis ecstatically ectodermosis edea Edriophthalma egotheism
egurgitate eidolic Ekoi elaeothesium elastometer Elateridae electrification electrocute
electroencephalogram electroendosmotic electrokinetics electromechanics electrophorus
electroplater electrotelegraphy electrotonize elegist Elishah elliptical elsehow embalmment
embosser Emerita Emily eminently emmer emollient empathic emplane emprosthotonos emulsible
enamellist enamourment encephalasthenia enchainment Enchytraeus endangerment endellionite
endocoeliac endopleura eneuch engarment engine Englishism engrainedly enkerchief Enkidu enricher
enrobe ensemble ensilist ensuingly entailment entempest enterocolostomy enteroischiocele
enteromyiasis enterospasm entertainable entrant entrust envapor eosinophilic epagogic ephemerous
Ephthalite epicarid Epiceratodus epicoeliac Epicrates epidermatoid epiphragm epiphytous
epistolizer epitaphial epizeuxis equatorially equilibrio equipollent equipollently
equipollentness equipper equiprobabilism equiproportional equivaliant erect ergology erichthus
Ermanrich Ernestine erythema escalate escapage eschew Eschscholtzia esclavage esemplastic esne
esocataphoria esotropic Essenism establishable Etchareottine ethionic ethmoidal ethmomaxillary
ethmopresphenoidal ethnography ethylidyne ethylsulphuric eudaemony eugenics Euglena eurite
Europasian euthyneural evaginable evangeliary evangelistship Eventognathi evilly evincible
evolutionist evolutionize examinative exampleless exappendiculate Excalibur exchangeability
excitosecretory excrementary excursioner exemplify exequial exerciser exist exonerator
exorbitantly exotropism expandedness expansionist expatiator expectorant expendible
expensilation explosiveness expositionary expressionism expugn exteriorly exterritorialize
extracalendar extramorainic extrasyllogistic extraterrestrial extund exuvial fadable fainty
fallaciousness fanaticism fanciful fantasticness farcetta farinaceously farmage farming
farrierlike farseeing fascisticize fatelike fatidically fattiness faunist Fayal fearsomeness
feasance feasibly feasten featurally featureful feculency fellaheen felonwort Fenzelia feoffor
fetch fettler fibrinose fibrinous fibrocarcinoma fibroma fiddler fieldfare figureless filace
filarious filicinean fimble fimbriated fingerlike fireworm fisherwoman fishpotter fishpound
fizzy flabellate flabellation Flacourtia flam flamboyantize flancard flanconade flaxdrop
fleshhood flether flexionless flirtationless flittingly flix floater floatplane floodlighting
floscule flotage flowerily flowerwork fluctuate flueman fluorspar flushingly flushness flushy
flutterless fob fogscoffer foment foodlessness footingly foraminulous forborne fordo
forecastlehead foreguess foreguidance foremeant forenoon foreshower foresightful forested
forestral forfar forgivable formalizer formlessness formoxime formulaic formulation formylal
forte forum fought foundational fountainwise Fourierist foveation fragrance franchise Frankist
Franklinia fraternism fraudulency freeholdership freeing freezer friarhood frightener frilling
fripperer frizzler frogginess frogtongue frondivorous frostroot frowning frugal frustrately
fulgide fundal fungicolous furfur furfuraceously further gabble Gadaba Gaetuli Gaffkya gaiassa
galactodendron galeate galewort gallivant gallocyanin galvanoglyph galvanopsychic gametophyte
gangliated gangling Ganguela ganomalite garava garibaldi Garrisonian Garrulus gaspingly
Gasterosteidae gastraea gate geck geggee Geisenheimer Gekkota gelid gelignite gemot genista
genitalia genomic genovino gentlepeople gently genuclast geochronology geomalic geometricize
Geonim geoside geratologic Gervas gesneriaceous gesticularious ghatti ghurry giddea gigantolite
giggling Gil Gileno gilim ging gingerwork gingivae girt glamorous glandulous glassophone
glassrope glasswort glauberite glaucescence Glaucomys glaumrie glaver gledy gliriform glom
glossectomy glossokinesthetic glossotype glove glucosemia gluishness glutin glycocoll
glycogenolysis gnomic goblinize goburra godling gogga Gohila Golaseccan golden Goldonian goli
gonadotropin gonfaloniership Gongorist Goniatites goniometric Gonium gonochorismal gopherwood
gorra gospeler Gottfried grangerism grantable grape graph graphotypic grassed grasshopperish
grather gravecloth graved graybeard greaseproofness greenage Gregarina griffon grimily grimy
gripman gritter grogginess groomy groser Grossulariaceae groveling growth growthless grubbery
gruel Grumbletonian grylli gryllus guacimo guaniferous guaracha guejarite guenepe guileless
gulfwards gunocracy guzmania gyascutus Gymnostomina gynaecea gynomonecious gypsiologist
gyrostatically habiliment hackbolt Hadendoa haec haemonchiasis hagi hagworm hair hairbeard
hairlace hairworm halalcor Halcyoninae halfheartedness hallow halolimnic Hamamelis hamleted
handgriping handicraftsman handmaid handsaw handsmooth haploidic hardwood harlotry harmony
harpooner harpwise harquebus harrier Harrovian Harvardian harvestry hatbox hatelessness hater
hatful hausen haustrum hawaiite headreach heatdrop heautophany hedonism heemraad Heliconia
Heliconian Heliopsis heliotherapy helleboraster helmet hemaphein hematologist hemiachromatopsia
hemicylindrical hemikaryon hemiorthotype hemiprotein hemotachometer hemozoon hendiadys
Hennebique Henry henyard hepatoperitonitis Hephaestian heptaglot heptarchical heptastrophic
herbaceous herbwife Herculanensian hereunto hermaphroditize hermitess hesitantly hesitation
Hessian heteroalbumose heterochronistic heteroclital Heteroneura heteronymous heterophoric
heterophylesis heterosexual heterotrophy hexabiose hexadactylous hexastich hexatetrahedron
Hicoria hideboundness hideousness hield highheartedness hilasmic himation hip Hipparion
hippiatric Hippoglossus Hippolytidae hippomancy hippotomist hippus hircocerf histochemic
histophyly historicopolitical histotherapist hoarding hoardward hodometer hoggerel hoistman
holder holding holocarpic holometabolian holoparasitic holophote holoproteide Holostei
holostomous homalographic homemade Homeridian homochromy homocline homodermic homoeokinesis
homography homologate honey honeyflower hooflike hordenine horngeld hornily horntail horrorist
hospitalization householdership housemastership housemother housewarm housewarmer humbleness
humin humorsomeness humourful hureek hurricano huskiness Hutterites huvelyk hyaloplasmic
hyaluronidase hydrargyrism hydrogalvanic hydrogode hydroscopist hydrostatic hydrotropic
Hymenogaster hyolithoid hyperadenosis hyperbole hyperbrachyskelic hypercoracoid hyperephidrosis
hypereutectoid hyperexcitement hyperleucocytosis hypernomian hyperodontogeny hyperotretan
hyperparasite hypersomnia hypersthenite hypnoanalysis hypnotically hypobranchiate hypoconulid
hypocrisy hypodermic hypoeutectic Hypoparia hypophonous hypothetically hypothetist Hyracidae
hysterocystic hysterometer ichu Icosteus idealism idealistic ideoplasty idiocy idiopsychology
idololatry idyllical idyllically Ierne igniferous ignorantism Igorot Iliac illation illiquid
imbarge imbuement immatchable immunogenetic immunogenically impassible impatiently impectinate
imperception imperial impertinently implant implate impolished imponderably importment
imposingly impostumate impotentness imprecisely improbative imputableness inagglutinability
inalterability inamorate inantherate inauspiciousness inbirth incarnant incessably incessancy
incidentalist incitingly inconsiderateness incontinency incontinuity Incrustata inculture
indecomposable indecomposableness indefensibility indelibly independable independent indexed
Indianeer indigenously indiscriminateness indoctrinize indweller inebriety inexclusive
inextensile inextension inextinguishable infanta infantility infantryman infeasible infeft
infelicific inferable infern infernalism infernalize infibulate infieldsman inflatus inflicter
influencer informational informative infra inframammary inframandibular infrastipular
infrequency infuriation ingestive inimicality inkhorn inkless inlook inness innovationist
inrigger insensate insensateness insincere insinuativeness insoluble install installment
instigation insubordinate insucken insufficient insufflator insularism intactly intemperately
interagreement interally intercadence intercollege intercommunion interdenominational
interderivative interentangle interganglionic intergradation interimistic interjection interlake
interlineate interlocally interlocutrix interloop intermammillary intermarriage
intermarriageable internasal internationalization interolivary interpenetration interpetiolary
interplant interpoint interpretably interpterygoid intersentimental intershoot intersow
interstratification intext intexture intrabiontic intracanonical intracellular intrafistular
intraneous intraserous intratonsillar intravasation intrench intricacy intriguery introductorily
intromittence invariableness invertive involucrum involutorial Io iodhydrin ion Ionic irenicist
iridectomize iridodialysis Irishian irrepentance irreprehensible irrepresentableness
irresponsibly irresponsive irritable isabelita ischuretic ishshakku Isis Islamistic Ismaelitish
ismaticalness isoamylidene isochronally isocyclic isoimmunize isothermobathic isotopic issite
iterate Itoland jackstone Jacobson jacuaru jaculiferous Jaime Japanization Japonize jarosite
jaspachate jass jawless jawy Jayant Jebusite Jehovic jelly Jeremias Jersey Jewship Jimmy job
jockteleg jocoserious Johnian jointress jokish Joni Jonval Joon Jos josie journeycake journeyer
jubilatio Judaizer judgeship judicatorial judiciable Juga juke Juloidea jumpingly june junkerdom
jurator justicehood justifyingly justo jutting juventude juxtaposition kaha kaiwi Kaliana
Kaneshite Karharbari karyokinetic Kasikumuk katabolite kataphrenia kayles Kee keelfat keelhale
kef kehaya kehillah kenotoxin Kerry Kevyn khaiki khansamah khatri Khevzur Khorassan kidney kier
kileh kilobar kinetoscope kingdom kipage kirker kirkman kittendom klavern klockmannite Knoxville
knublet Knut kobird kohl kokako konak Kongoese kongoni korntunnur Kosalan Krapina kritarchy
Kronion Kuki kurbash kurumaya Kurumba labba labella labial labordom laches lachsa lackeyed
lacrosser lactenin lactescency lactifluous Laemodipoda lakeside Lamarckia Lambadi Lamnidae lamp
lampblack lampflower lamplighted Lana landlordism landman landsale language languishment
laniform lanterloo lanthana Lanuvian lapidate lapideous lapidicolous lapidose largitional
larviposition laryngovestibulitis laterigrade Latiniform latrocinium launchways laverock lawner
laystall leadership leakless learner leathercraft leatherroot lectureship lecythidaceous
legation legionry legislatorship leguminiform Leiophyllum Leisten lenient lent lentor
leontocephalous leper Lepidosphes Leposternon leptospirosis lerret lethality letterleaf
leucocythemic leucotic Levantine lexigraphy liberalizer libidibi licareol lichenist licitation
lickerishly lickerishness lidless lightening lighter lignification lignin liliform limbal
limburgite limewater limpidly limuloid linguopapillitis linolin lipoidic liquid liquidation
liquidless liquor lirellate Lisa listen literator lithoclast lithoglyptics lobefoot lobular
locally locked locus lodgeman logarithmal logicalness logrolling lomentariaceous Londonesque
longing Lonicera looby loquaciously Lora lorica Lorrainer lovability lovelessness lovelily
loxolophodont lubrify Luite lumbarization lump lupanine lush Lusian lustrification lutanist
Lutheranizer Lutraria luxuriousness lymphad Lyonetia lysimeter machicolate machine macrocosmic
macrodont macrolepidoptera macromethod macroplastia macroprosopia macrozoogonidium macula madcap
madid madreporitic magiric magirology make malacoid Malaga maleficiation maltodextrine
Malvastrum mamelonation mammoth manatee mangonization mani Manichaeanism manifestive
manipulatory manrope manship manslaying mantis manuma Mappila maracan marcella marcher marconi
margeline marina marrowish martyrly martyrologium massasauga mastooccipital mastorrhagia masty
masurium matsu maturable matutinary mawbound mayhappen Mazdakean Mbuba meatman Mechir
meddlesomely mediastinotomy medicochirurgical medicomechanic mediofrontal meditate medley
medusalike megafarad megakaryocyte megalodactylism megalohepatia megazooid meionite melaconite
melagra melancholia melanoderma melanosis melezitose melolonthine meloplast membranously
memorially Menobranchidae menorrhagic merbaby mergh merk mescal meshed mesoarium mesocentrous
mesogastric mesometric mesorchium Mesosuchia messenger metad metallic metalloid metalmonger
metamathematics metamorphy metapophysis metasomatism metathesis metempsychic meter meterman
metricize metropolitan Mezentius mian Michiganite Mick micrencephalia microampere microcrith
microcyte microgranulitic micrograver microinjection micromazia microorganism microzone
microzyma midbrain midgety midmorning milcher milker milkness millithrum Milo Minaean minder
mineragraphic minette miraculousness misanthropism misbandage miscellaneous miscondition
misdefine miseducative misestimation misexpression misfare misfire misgraft misimprove miskeep
mismatchment misprincipled misreporter missiness Missouri mitchboard mitotically mixed mnemonist
Mocha mock modifiableness Moi moisten moit moky molliently Momotus monandric monilioid
monkeytail Mono monochloro monochloromethane monocondylian monoformin monoganglionic monolingual
monology monophthalmus mooner moonshiner moontide moorflower moosey moost mootworthy morbility
mordellid morigerous morsel mortuarian mosaicism mosquitocide motional motorism mountainet
mousingly mouthful mover mucous muff muffed mukti mulefoot multinodular multipresence mum
mumness muriate murid muridism Muscicapa muscovadite musette musicoartistic muskeg mustafina
mutilous muttonhood myalism mycelian myelomeningocele Mylodontidae myocellulitis myogenic
myographic Myosurus myriaded Myrmecia mysticality mysticity mythohistoric Myxinoidei myzostomid
Naos naphthalidine napless nappe narcolepsy nasobasilar nasobuccal nationalistically
natrochalcite nauplioid navar navicula navigational nayaur Nazaritism nebularization nebulizer
necessitously neckercher necklike necrobiotic necropoleis nectophore needleworker needling
nefandousness nemalite neoimpressionist nephrectasia nephrectomy nephroptosis nephrosis
netbraider neugroschen neuralgiac neuratrophia neurilemmal neurohistology neuropodous
neurosclerosis neutralness nevo Newfoundlander newings nick nicotinize nictation nidulation
nieve night nightshade nighttide nincompoophood nobleheartedly nobley nobly nocktat nocuous
noddle nolleity nomadic nominately nomocracy nomothete nonacceleration nonasthmatic nonattached
noncommunicating nonconformist nonconsular nonconvivial noncorrection nondecadent nondecalcified
nondefining nondependence nonderogatory nondialyzing nondifferentiable nondistant nondogmatic
nonelementary nonentitative nonespionage nonexpert nonextradition nonfibrous nonfinishing
nonflowing nonfricative nonignominious noninductive noninterfering nonjuring nonleaking
nonleprous nonobservable nonpariello nonpaying nonproletarian nonquota nonretroactive
nonreversing nonruminant nonsecurity nonself nonsequestration nonshipper nonskid nonsolar
nontarnishable nontestamentary nontrier nontrigonometrical nonunited nonveteran nonvirtuous
nonwalking Nordicity northupite northwards notary nothingly nowadays nubigenous nucleolysis
numen numismatical nunnated nursegirl nurtural nutcrackery oakum oarsman oasis obambulatory
obcuneate obeahism obeseness obsidianite obtest Occamistic occiduous occupationalist oceanful
ochlesitic octingentenary octopodous ocuby oculocephalic odalisque oddness oddsman
odontonecrosis odored Odzooks oestrian oestriasis offendable offensive Oleacinidae olefin
oleosaccharum oligochaetous oligonephrous olio Olympieion omarthritis omen omnific omnipotence
omniscient omnist omnivore onefold onegite oneirology onliness onofrite onychitis onychophagist
onymal oocyte oospore opaqueness opelet operationist ophryon ophthalaiater ophthalmostasis
opiniatreness optologist optometer orangey ordonnant organosilicon organotin Orientalogy
orientation ornery ornithologically orometer Orontium orthogonality orthovanadic Osage osamine
oscillancy Oscillatoria oscine osmazomatic osmogene Osmunda osteodermatous osteography
osteolytic osteosynovitis osteothrombosis osteotrophy Ostmannic otiatry outbid outburn outcity
outdwelling outeat outpoll outportion outrage outrush outstare outstate outsucken outtire Ovampo
ovated ovenpeel overapt overbig overbleach overblessedness overboast overcanopy overchildish
overcommend overcompound overcrow overdainty overdecoration overdelicately overdesire overdrip
overenter overfat overfee overfeminine overfluently overheavy overheld overlap overlettered
overlogical overluscious overnarrowly overprolix overprovident overrange overrapture overrate
overreaching overripe oversated overseriousness overshepherd oversleep oversmoothness oversoak
oversoft oversprinkle overstaff oversweeten overtake overtediously overtrample overunsuitable
overwhelm overwoman overwomanly overwroth ovest owd Oxybaphus oxyl oxyrrhynchid ozonometry paca
pachyodont pacificatory pacificity padfoot padtree paedarchy painproof painstakingness
paintingness pairment palaeethnological palaeobotanic Palaeocarida palaeolith palaeological
palaeopsychological palaetiology palatelike palatial palberry paleanthropic paleethnology
Paleoconcha paleoencephalon palish palladinize pallall palmilobate palpebra palsgrave panade
panchromatism pancosmist pandal pandiabolism pandour panical panoplist panoply pansclerotic
pansied panties pantomimic pantoscope paparchy papering Paphian papillous papyrologist
parachutist paraconid paragrammatist paralgesia parallel paramountness paranoidism paranucleinic
paraphernalian paraphrasia paraplasm pararek parasemidin parasynaptist paratomial parcellary
pardao pare parietovisceral Parilia parishional parliamentariness parochine paroophoritis
parricidal partake parthenogonidium particular particularistic passen passer password pastoral
pastorale pasturability Patagones pathfinding pathognomical pathognomonical patricianism
Patripassianly paxillus pearlitic pectosase pedanalysis pedatipartite pedicellation pediferous
peeler pellagragenic pelomedusid pendanting pensileness pentacarpellary pentacle Pentandria
pentasyllabism pentatomic pentecontoglossal pentrit Pentstemon Perakim perceptionism Percoidea
perdu perduellion pereion perforatorium perfumeress perfumery perfusive peri pericardiophrenic
periclaustral periconchitis perimyelitis periorchitis peripatetically perissodactyle peritrophic
perjurious perlid permeative Permiak permutational peroxyl perpetualness perradiate perradius
persevering personeity perspectograph pertinent Perugian pervigilium pesthouse pestology
petrological petrophilous petrosphenoidal phalangiform phalerated phantascope Phantasmist
Phaseolus phellonic phenomenally Philepitta Philepittidae Philodina philodramatic Philomachus
phlebectasis phlebitis phlogosed pho phonesis phoneticogrammatical phonetics Photinianism
photocatalysis photodrome photoluminescence photometrician photon phototheodolite phragmosis
phrenicocolic phrenologically phycomycete phylacterical phyllocarid phyllopode phyloneanic
physicoastronomical physicotheological physiognomy phytase phytologic phytology phytoserologic
piccoloist Pickwickian piebaldness Piedmontese pierage piezochemistry pignoration pika
pilgrimess pilimiction piloerection pinetum pinfold pinguescence pinkweed pinworm pipage pipeman
pipestapple Pipilo pippinface piproid pisay piso pitchfork pitfall pitier pitpan placardeer
plagiarize plainsoled Planckian Planera plangently plastochondria plateau plateworker
platydactylous platyfish please pleasedly plebianism plenilunary plenitude plenty pleurite
pleuropulmonary Pleurostigma pliancy plock plottery plousiocracy plugger plumlet plumoseness
plumuliform pneumaticity pneumatophany pneumatophony pneumolysis Po Podalirius podgily
podophthalmite poetling Poinciana polaxis policewoman poligar pollened pollinator pollinigerous
Polonization polyatomicity polychromy polyhaemic polyloquent polymetochia polynemid polypharmic
polyplacophore polyplastic polyplegic polypsychical polyspondyly polystomium polysymmetrically
pombo pommel ponderment pondokkie popper poppycockish poppyfish porcelainous porcellanid
porencephalon pornographic portableness portreeveship portulan posology possess possum
postclimax postdisseizin posterotemporal postglacial posthole postic postrheumatic postulantship
Postverta potentiation potestative potrack pouchy poulterer powwower prancy pratement
prayerfully prayerlessly preabsorbent preacherless preachman preaction preactivity preaffection
preagitate preallowably prebetrayal prebridal precalculate precancellation precanonical precaria
precava preconduct preconsolidated preculture precynical predescend predestinationism
predeterminative predictation predislike predisplay predoctorate prefaceable preferentialist
preflowering preformation pregratify preguess prehend preignition preimposal preinterfere
preinvestigate prelaunch premeditatedness premosaic preorganize preparation preponderation
prepositor prescholastic presently preservative presidiary prespontaneously pressfat presuming
presupplication pretan pretechnically pretentative prettyism primordialism princekin prionid
prismoidal proabstinence problemdom procapitalist procarp procerebrum procommunist Procrustean
proctocystotomy proexercise profanation professionalize professorially proficuous progoneate
proker promisable Pronuba pronucleus propagator prophloem proplasma propose prorector proscolex
proscription prosethmoid prostatocystotomy prostatovesiculitis prosternate proteidean proteosome
prothalamia protium Protoceras protocol protogenetic protopod protorthopteron protosilicate
prototypic prototyrant provect providable provincialate proxenus Prussify psammologist psephite
pseudobranch pseudococtate pseudocolumella pseudocorneous pseudocotyledon pseudoinsane
pseudoisomeric pseudoleucite pseudomedical pseudomiraculous pseudoneuropteran pseudonychium
pseudonymousness pseudopelletierine pseudopriestly pseudorhombohedral pseudosalt pseudotachylite
Psilotaceae Psittacus psorospermic pssimistical psychal psychanalysist psychokinetic
psychorhythm psychrophyte Pteropodidae pterosaurian pterygophore publicness puborectalis
puckneedle pudsey pullen pummel puncticular punger punition punketto puntsman purplescent
purplish purply pushfulness pusillanimousness Puya pyelocystitis pyralid Pyramidellidae pyritous
pyrocondensation pyromagnetic Pyromorphidae pyrophotometer pyrostilpnite pythonomorph
Pyxidanthera qasida quadrumanal quaestuary quartet Quartodeciman quaver quean quercite questeur
quickie quinaldine quininic quinizarin quinovate quinquefid quinquevalency quinquevir quinzieme
Quiteno quodlibetary quoined r rachiotome rackway radio radiocaster radiomovies radioscopy
ragtag raidproof rainily rakestele ramose ramp ramshackled Randell ranging ranula rapidness
rapturousness rareripe rascal rascallion ratchel rationable ravel ravigote razormaker reabsent
readableness reaffection realizing reanimalize reargument reassign reassort reastray rebreed
rebuker rebute rebuttable rebuttal recant recarbonization recast receivability recement
receptoral rechain rechisel recipiency recitatif reckoning reclinate recognizant recognize
recompilation recomplicate reconsign recoup recourse recover rectilinearly red redamage
rededicate redeem redeemeress redefer redefine redelivery redemptional redingote redisseisin
redistribution redredge redroot redthroat reedbush reedling reeled reeshle refectioner referent
reflectometer refocus refractive regainer regardable Regga regimentally registrant registrate
registrator regradation reimbibe reimplantation reimprint reinflation reinstallation reinversion
reiteration rejectamenta rejourney rejustification reking relational releather relic relist
relucent remagnetization remast remeasure remedial remolade renderable rendering repaganize
reperception repique replantable replantation reporter representativeship repressor
reprimandingly reree resectional reservation reservedness resing resistance resistively
respectant restitutory restretch resuing reswallow retariff retender reticulitis retraction
retrieval retrobuccal retrocervical Reuben revellent reverberative revictualment revindication
reviving revocability rewardfulness rewash rewrap rhabdium rhabdolith Rhapis rhetor rheum
rhizomorphoid Rhizophoraceae rhizopodan rhizotaxis Rhodamine Rhodobacteriaceae Rhodocystis
rhombenporphyr rhombical ribband ridibund rift Riksmaal rimmaker rine riprapping rivalship rob
robalo Robbin roccellin rodentially roding rollermaker rollway romancelet romanticity rompingly
Ron Ronsardist roomage ropebark rosily rotal rotproof rotundify roundeleer row rowdily rubbed
Rubicola rubrica rubricator ruching rudderlike ruddock rudented Rudolf ruewort Rugosa rugosa
rumbooze rumbustical rumchunder ruminator rundle runer rung runite runted rutelian ruthlessness
Rymandra saccharobiose Saccharomycetales saccharose sachem sachemship sackdoudle sacramentarian
saeculum saeume sagolike sakulya salacious salaciousness Salangidae saliferous salinize sallet
salmonid salol salometer saloop saltarella saltatorian salvable Sambucaceae samel sameliness
Samnite sampler San sanctify sander sandnatter sandspit sanguinely sanguiniferous Sanguisorba
Sanhedrist Sanskritize santal sapid sapor saraf sarcoenchondroma sarcolemma sarkine sarsa sartor
Saruk satellitoid satirist satisfiedness satrapal saucemaking saum savable saveloy savola
saxcornet scabbedness scabbery scaffery scamphood scantle scapeless scaphion scarabaeoid scarp
scathelessly scatomancy scavel scenarioize scenic scenite sceptered schizolite schizostely
scholastically schtoff sciatherically Scincus scleratogenous sclerodermia Sclerogeni
scolopendrid scolopendrine sconcheon scotomatic scrabbler scramblement scran screaking
screechily scription Scriptureless scroggy scrollery scrollhead scrotal scrubby scunner scutal
scyphostoma secondly sectism secularist seduct seeded seedlessness seizor selection selenious
selfish selflessness selfward semarum semball semiarch semibelted semicanal semicarbazide
semicollapsible semiconfinement semiconvergence semicrustaceous semifascia semiglazed semilethal
semimicrochemical semimonthly Semionotus semiprivate semisentimental semisimious semisoft
semispontaneously semitranslucent semological semuncia sensibility sensorivolitional
sententiosity sentimentally septet septicolored septiferous septifragal septivalent septogerm
septuagenarianism sepulchralize sequestratrices serenissimo serophysiology serosanguinolent
serpulae serratirostral servomechanism sesquialtera sesterce sexiped shabbify Shaktism shaku
shamelessness shapingly Sharra shawy sheaved shebeen shedlike sheepbiter sheeted shelta
sherbacha shicker shikimi shillety shinglewood shockingly shoeingsmith shopbreaker shoppe
shorttail shotgun shotstar shoulder shree shrimpi shrimpy shulwaurs shutoff shutter sialorrhea
sickle Siddhartha siderognost sidership siever sign signification signless sikatch silcrete
silenaceous silicohydrocarbon silkily silklike silver simplicitarian simulance Simulium
sincereness Singfo Sinian sinigrin sinistral sinkerless sinuatocontorted sinuosely sirgang sirky
situational siva sixte sixthet siziness skaff skeen skelderdrake sketchily skinflinty skippet
skrike skywriting slatish sleepingly sleepless sleepmarken slent slipping slive sloppiness
sloshily slotwise slouching slowworm sludge Smithianism smithy smokebox smoked smokehouse Smyrna
sneckdraw snib sniffle snobbism snoove softhearted soggily solaristic solay solenoidal solepiece
soliloquy somegate sometimes somniloquize soneri Songo sooloos soudagur soulfully soulical
soundful southmost Southronie sowbelly sowte spadonism spart spavied spearflower spearman
spectrochemical spectrophone speeching speedful speldring spelldown speltoid spelunker Spencean
sperm spermarium spermashion spermatocyst spermologer sphaeriaceous sphereless spherograph
spheroidize sphygmia spicily spiling spindlewood spinebone spinipetal spinsterhood spintext
spired spiritualist spitbox splanchnapophysial splenolysin splotchiness splutter spondyloschisis
spook spookery sporogonial sporophyllum spotlight spoutman spraddle sprayful spreadhead sprinkle
sprinkling sprose spurrial squabbly squaddy squail squamosodentated squeezy squibbish squushy
Staatsrat stableness Stacey stade stageableness staghunting stagnantness stairbuilder stalklike
stallage stamineal stamnos stamphead stand stannel stapling starvedly stary stateside stateway
statutorily stauropegion steelproof Steen stem stemming stench stenchful stenocranial
stenotelegraphy Stephanoceros stephanotis stepuncle stepwise sterelminthous stereotomist
stereotyper sterigma sterlingly stethometer stigmaria stillroom stipendium stitching stitchwork
stockbreeder stocker stola stomapod stomatology stomper stoneworker stooden storeen Straffordian
straky strangle stratus strayling streamliner strigose strung Struthionidae struvite stud
stunsle stylewort stylograph Stylops styptic subantichrist subarachnoidean subchorionic subcity
subcrossing subdolously subexternal subfactory subfulgent subhalide subinfeudatory sublanate
submentum submissively submontagne suborganic subpericardial subpool subport subpyriform
subscience substructure subtend subtercutaneous subtransparent subtrifid subtrousers subventral
subvesicular succotash succulence sudden Sueve Sufeism suffumigation suggestedness suhuaro suint
suithold sulbasutra sulcalize sulfanilic sulfoamide sulphamyl sulphimide sulphoarsenious
sulpholipin sulphonalism sulphonyl sulphostannic sultrily summage summar summerward sundrily
superagrarian superanimal superazotation superbold superconfident supercontest superedification
superelastic superficially superfructified supergallant superhirudine superlogical supermediocre
supermilitary superofficiousness superomedial supersecretion supersensuousness superserious
superserviceable superstitiousness supertaxation superunity superzealous suppletively suppliable
supracaecal suprahuman supraintellectual supratropical supremely suraddition surcharger
surfboarding surfeit surgeoness surgy surpasser surpassingly surrection surrounding surroundings
Suto swaggeringly Swainsona swallet swampland swang swarmer sweetfish sweeting sweetwater swick
swing swipes swirring swordfisherman sylid syllogistic sylvatic symbasical sympathectomize
sympathetical symphonize symphonous symptomatic synacme synanastomosis synangia synapticula
syncarpous syncopize syndactylia synergidal synochoid synodite synoecize synonymic
synostotically synsacrum synthetical syntonizer Syrianize syrphid syrtic systemless Tab Tabby
Tabellaria tabid tableity Tachardia tachygraph tachygraphometry tacit tactilist tain tairger
talliable talpacoti Talpidae talpine talukdar tamarao Tanagridae tangie Tanitic tankle
tantalization Taonurus tapaculo tapperer tarbuttite tarrass Tarrateen tarsia Tartarization
tashrif task taskit tasset tattooist tatu tay Tchi tea teachable techiness technochemistry
tectorial tecuma telemeteorography telencephalic teleocephalous teleorganic teleotemporal
telesia telewriter telford telluride telotrochal telotrophic temporohyoid tempre tenorite
terebinthinate Terebratulidae terpane terral terrestrialism tessellated testable testatrix
testify testiness testingly tetel Teton tetragram tetrandrous tetrapleuron tetraskelion
tetraspermal Tetraxonida tetrigid tetrode Thalian than thanadar thanatophobe thapes Thaumantian
thaumaturgia Thebais thenadays theocollectivism theodolitic Theodosia theologicometaphysical
theophagite Theophilus theosopheme thermography thermonasty thermopalpation Thermopsis therodont
Thessalian thickness thiefproof thin thiocarbonic thionobenzoic thionthiolic thioxene Tho
thoracolysis thoracomelus thought threnody throating throatlatch throatlet thunderer thuswise
thymene thyreoidectomy thyroidean Tiberian ticketing Ticuna tiffany tigerflower tignum tigress
tigroid Tilda Timaliinae timberjack timeful Timonize Timothean tinetare tingibility tingletangle
tingly tipful Tiphia tireless tirrwirr tithonicity Tities titillation tobe Tocharic tock
Tocobaga toddlekins toddler toelike togaed tollhouse Toltecan toluene Tomming tomorn tonguer
took toosh tootler toploftiness topology toppiece topsoil Tor toran torta Tortricoidea
torturableness torturingly toruloid totalitarian totipotentiality touchpiece tourmaliniferous
tourmalite toweringly townfaring Toxoglossa toxone toxoplasmosis tracheal trachelology
trachelotomy trachyte tractory tragicomically tramman transcortical transformable transfusion
transilluminate translucency transpirative transverbation transversely traumatosis treasonably
treasuryship treater treescape treetop Trematodes triamide triapsal triaxial tricephal
tricephalic trichloroethylene trichoglossine trichromatic trick tricksy tricosanone triedly
trigamy trigrammatic triluminar trimacer trimester trinklement trinomial trionym triphaser
triphenylated triphylite tripliform triquetrously tristful Tritonia tritonymphal triunitarian
Triuridaceae trivetwise trochiferous trochodendraceous trod trolling tromple trophothylax
tropine troweler trowth truantcy true trumpetless trygon trypanolytic tuart tubatoxin tubuli
tudel tugrik tulsi tumbester tumbled tumbler tumefaction tungate tungstite tunnelly Tupperize
turbanless Turcophilism turion turnoff turretlike turtosa twanking twatchel twigger twitchily
twizzened typer typocosmy Typotheriidae Ubiquitarian Ulmaria ultralaborious ultrastandardization
Umatilla umbel umbonate umbone unachievable unactually unagreed unalgebraical unamicable
unapostolical unappropriate unartistlike unassessed unassimilative unattackably unattainment
unattire unattractively unawardable unballoted unbark unbarrel unbeauteously unbehoving
unbenevolent unblundering unbolted unbondable unbonnet unbrothered unbudgeableness unbudgeted
unbumptious uncapably uncapacious uncaptured uncart uncausatively uncavalierly uncelestial
uncertifiableness unchangeableness unchaptered unclarity unclean unclify uncompoundable
uncomprising unconceded unconclusiveness unconcordant unconfidential unconvincingly uncoopered
uncorker uncorrectly uncorrespondent uncorrigibleness uncosseted uncover uncoveting uncraven
uncrevassed uncrumple uncrying unctioneer uncuckolded uncurableness undatedness undeceivable
undeceptious undefilable undepartableness undepressing underdeacon underdressed underdrive
underfolded undergrow underivedness undermoney underpay underpier underprize underread undersole
undertide underturnkey undescended undeviated undiplomaed undirectional undisastrous undisbarred
undiscarded undismay undispensing undisprovable undisturbing undrained undressed undular
unelectrify unemblazoned unembraceable unemerged unermined uneverted unexhaustibleness
unexplicably unexpressedly unexpressibly unextendible unextracted unfaultfinding unfeeling
unfelicitated unfellow unfermentably unfickle unfigured unfixity unflossy unforeseenly unforged
unformal unfortune unfrightened unfringe unfrowardly ungaite unglobe ungloved ungone ungouged
ungripe ungroomed ungrounded unguardedness unguessableness ungypsylike unhandicapped unharming
unheathen unhelved unheroize unhidden unhogged unhonest unhumid unicolored unicornic
unidactylous uniformally unijugous unimbibed unimpartial unimposedly unincarnate uninchoative
unindigent unindurated uningenious uningenuous uninhumed uninterestedly unintombed unintroitive
uninundated uninurned uninvalidated uniphase uniporous universal universe unkeyed unload unlocal
unlocked unlocomotive unlonely unluffed unmade unmagic unmajestic unmalleable unmantle
unmarrying unmaternal unmeddlesome unmerged unmetropolitan unmingling unmissed unmonarch
unmortgageable unmortifiedly unnagging unnethis unnullified unoffensiveness unofficious
unordered unoriginative unoscillating unparching unpersuadedness unphilological unpiteously
unpointed unpolluting unpompous unprejudicedness unprepare unprescient unpresentable
unpresumptuously unpretending unpriceably unprinted unprocurable unproduceableness
unproductively unprop unprosperously unpurposely unqualifyingly unquested unquilleted unrebuked
unreflecting unreliableness unreligion unreligioned unrelinquishably unreplied unreplying
unrescued unrespectful unrestable unretardable unridged unrolling unroosted unrulable
unsacramentarian unsanctimoniously unscannable unscrew unscrimped unsearchable unseason
unsettlement unsharing unshop unshowed unshunned unsimplify unskillful unsolvably unsooty
unsophisticatedness unstainedly unsteadying unstill unstructural unsubordinate unsurnamed
unsuspectably unswept unswerved untaintedness untangibly untaxable unterminableness unthank
untimed untire untithed untoggle untractarian untrainedly untransferred untranslatability
untrinitarian untroublesome untunneled unturreted ununiformly unusableness unusuality unusurping
unvulgar unwarlike unwarping unwastefully unweighing unwillingly unwinter unwithstanding
unwoundableness upbar upbrace upchariot upchoke upcity upgrow uphearted upness upping uppoise
uproot upstand uptide uptube uranium uranoplegia uranoscopy uredo urine urocele urofuscohematin
urohyal Uromycladium urorosein usings usneaceous ustulation uteroovarian uveitis vacuolary
vadium vaginant Valkyria value valvelet vanman vaporously Varda vareuse variative varietist
Variolaria varnished vaticinant vaticinatress Vatteluttu Vaucheria Vaudism vegetocarbonaceous
veiny velamen veldt velellidous vellumy venation ventail ventifact venture verbify vergentness
verify vermiformous vermivorous verruculose versicolor versta vesiculigerous vesiculocavernous
vesiculotympanitic vespacide Vespertilio vestrical vet vetust vibratingly vigilance villalike
Vindelici vine vinea violaquercitrin viper viperous virological Vishnavite Vistlik vitalizer
vitiator vitriol vividiffusion vividity vociferousness Volcanalia volt volumetrical
volumometrical voluntarism voussoir vriddhi vulnerable vulsinite wage waggel Wagnerist Wagogo
wagonload Wahabiism wainer waldflute waldhorn waled waltz wammikin waneless warch warder
wardmaid warmness warmonger Wasagara washer washing washrag washstand wasp wassailous watch
waterphone wattman wauble waved waxbush way weakmouthed weakness weal weanyer webfoot weddinger
Wednesday weedage weeps weeshy wellish Welshwoman wese Westralian whangdoodle whatna wheelband
wheen wheneer whereinsoever whimble whimperer whimwham whirlwindish whitecorn whiteface
whitewood whitster whoop whussle wicht widespreadedly widower wilga willer Willie willier
windclothes windily wingstem winnings winterweed wintriness wireway wireworking withoutforth
witty wizardly Wogulian wolfdom wollastonite womanproof wonting woodhorse woodpecker wordiness
wordmanship workpan worrywart worthlessness wotteth woundily wrappage wrapper wrathlike wrawl
wrecker wrongously Wycliffist xanthione xanthophore xanthopicrite xenogenetic xenophya
Xenopodidae xenosauroid xeroprinting xerostomia xerotes yarrow yellowbill yellowcup yellows yeo
yestermorning yill yip yis youden your ytterbic Yucatec Yvonne zaphrentid Zaptoeca Zaramo Zend
Zenonian zig zizz zoocyst zoogeny zoogeographic zoophytic zooplanktonic zorrillo zygapophyseal
zymosimeter zymotize
""".split()
)
