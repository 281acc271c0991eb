"""The bench's printed table (benchmarks/run.py writes the JSON; this turns it into lines)."""

from __future__ import annotations


def _fmt(x, unit: str = "", digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}{unit}"


def _shares(*runs: dict) -> str:
    def one(run: dict) -> str:
        tries = f" (least disturbed of {len(run['attempts'])})" if run.get("attempts") else ""
        return _fmt(run.get("other_cpu_share")) + tries

    return " / ".join(one(run) for run in runs) + "  (0 = machine to itself)"


def _memory(*runs: dict) -> str:
    """Peak RSS / PSS of each run in GiB."""
    def gib(x):
        return None if x is None else x / 1024

    return "; ".join(f"{_fmt(gib(run.get('peak_rss_mib')))} / {_fmt(gib(run.get('peak_pss_mib')))}" for run in runs)


def table(report: dict) -> str:
    rows: list[tuple[str, str, str]] = []  # (what, measured, target)

    def verdict(value, target) -> str:
        if value is None:
            return f">= {target} (n/a)"
        return f">= {target} ({'met' if value >= target else 'MISSED'})"

    for r in report["inference"]:
        o, w, b = r["ours"], r["raw"], r["backend"]
        rows.append((f"{r['model']}: ours / raw {b} req/s, steady",
                     f"{_fmt(r['ratio_steady'], digits=3)}  ({_fmt(o['rps_steady'])} vs {_fmt(w['rps_steady'])})",
                     verdict(r["ratio_steady"], r["target"])))
        rows.append(("  end to end (spawn + engine start)",
                     f"{_fmt(r['ratio_e2e'], digits=3)}  ({_fmt(o['rps_e2e'])} vs {_fmt(w['rps_e2e'])})", ""))
        if "ours_one_batch" in r:
            ob = r["ours_one_batch"]
            rows.append((f"  ours with batch_size={ob['batch_size']} (one batch) / raw",
                         f"{_fmt(r['ratio_one_batch_steady'], digits=3)}  ({_fmt(ob['rps_steady'])} req/s)", ""))
        rows.append(("  identical answers ours vs raw", _fmt(r["identical_answers"], digits=3), ""))
        rows.append(("  CPU share other processes took: ours / raw", _shares(o, w), ""))
        rows.append(("  peak RSS / PSS GiB of the tree: ours; raw", _memory(o, w), ""))
        dv = r.get("raw_defaults")
        if dv:
            rows.append((f"{r['model']}: ours / raw {b} with ITS defaults req/s, steady",
                         f"{_fmt(r['ratio_defaults_steady'], digits=3)}  ({_fmt(o['rps_steady'])} vs "
                         f"{_fmt(dv['rps_steady'])})", verdict(r["ratio_defaults_steady"], r["target"])))
            rows.append(("  end to end (spawn + engine start)",
                         f"{_fmt(r['ratio_defaults_e2e'], digits=3)}  ({_fmt(o['rps_e2e'])} vs {_fmt(dv['rps_e2e'])})",
                         ""))
            rows.append(("  set beyond LLM(model=path)", ", ".join(k for k in dv.get("engine_args", {}) if k != "model")
                         or "nothing", ""))
            chose = dv.get("vllm_chose") or {}
            rows.append(("  vLLM chose", ", ".join(f"{k}={chose[k]}" for k in (
                "dtype", "compilation_mode", "enable_chunked_prefill", "max_num_batched_tokens") if k in chose), ""))
            rows.append(("  identical answers ours vs defaults; mean chars",
                         f"{_fmt(r['identical_answers_defaults'], digits=3)}; {_fmt(o.get('mean_answer_chars'), digits=1)}"
                         f" vs {_fmt(dv.get('mean_answer_chars'), digits=1)}", ""))
            rows.append(("  CPU share others took; peak RSS / PSS GiB", f"{_shares(dv)}; {_memory(dv)}", ""))
        for variant, st in (r.get("settings") or {}).items():
            shown = "same as ours: not measured" if st.get("unchanged") else (
                f"{_fmt(st['ratio_vs_ours_steady'], digits=3)}  ({_fmt(st['run']['rps_steady'])} req/s; > 1: ours is "
                f"slower with {variant})")
            rows.append((f"  raw with ours but vLLM's {variant} / raw with ours", shown, ""))
    for r in report["backends"]:
        a, b = r["compared"].split("/")
        rows.append((f"{r['model']}: {a} / {b} backend req/s, steady",
                     f"{_fmt(r['ratio_steady'], digits=3)}  ({_fmt(r[a]['rps_steady'])} vs {_fmt(r[b]['rps_steady'])})",
                     ""))
        rows.append(("  end to end", f"{_fmt(r['ratio_e2e'], digits=3)}  ({_fmt(r[a]['rps_e2e'])} vs "
                                      f"{_fmt(r[b]['rps_e2e'])})", ""))
        rows.append((f"  CPU share other processes took: {a} / {b}", _shares(r[a], r[b]), ""))
    for r in report["finetune"]:
        o, w = r["ours"], r["raw"]
        rows.append((f"{r['model']}: ours / raw TRL train tokens/s",
                     f"{_fmt(r['ratio_tokens_per_second'], digits=3)}  ({_fmt(o['tokens_per_second'], digits=0)} vs "
                     f"{_fmt(w['tokens_per_second'], digits=0)})", verdict(r["ratio_tokens_per_second"], r["target"])))
        rows.append(("  end to end (spawn, load, train, save)",
                     f"{_fmt(r['ratio_e2e'], digits=3)}  ({_fmt(o['e2e_seconds'], 's', 1)} vs "
                     f"{_fmt(w['e2e_seconds'], 's', 1)})", ""))
        rows.append(("  CPU share other processes took: ours / raw", _shares(o, w), ""))
        rows.append(("  peak RSS / PSS GiB of the tree: ours; raw", _memory(o, w), ""))
    d = report.get("demo")
    if d:
        rows += demo_rows(d)
    for name, error in report["errors"].items():
        rows.append((f"{name}: FAILED", error[:70], ""))
    width = max((len(r[0]) for r in rows), default=10)
    mwidth = max((len(r[1]) for r in rows), default=10)
    env = report["environment"]
    lines = [f"introspection bench: {env.get('device')} ({env.get('usable_cores')} cores), vllm {env['versions'].get('vllm')}, "
             f"trl {env['versions'].get('trl')}; load {report['load'].get('load1')} at start; "
             f"{_fmt(report.get('wall_seconds'), ' s', 0)} in all"]
    lines += [f"{w:<{width}}  {m:<{mwidth}}  {t}".rstrip() for w, m, t in rows]
    return "\n".join(lines)


def demo_rows(d: dict) -> list[tuple[str, str, str]]:
    """The demo section's table rows: from an empty store, its profile, the bench's stage view, the rerun."""
    f, s = d["first"], d["rerun"]
    met = {True: "met", False: "MISSED", None: "n/a"}
    label = " ".join(d["overrides"]) or "make demo"
    rows = [(f"demo ({label}) from an empty store: wall", _fmt(f["seconds"], " s", 1),
             f"<= {d['target_wall_seconds']} s ({met[d['meets_wall_target']]})"),
            ("  peak memory, all processes together: RSS / PSS GiB",
             f"{_fmt(d['peak_rss_gib'])} / {_fmt(d['peak_pss_gib'])}  (CPU share of others {_fmt(f.get('other_cpu_share'))})",
             f"<= {d['target_peak_gib']:g} GiB RSS ({met[d['meets_memory_target']]})")]
    profile = profile_stages(d.get("profile"))
    if profile:
        total = d["profile"] if isinstance(d["profile"], dict) else {}
        if "wall_s" in total:  # the run's own totals (introspection/core/profile.py)
            rows.append(("  the run's profile: in all", "; ".join([
                _fmt(total.get("wall_s"), " s", 1), f"{total.get('requests', '-')} requests",
                f"{total.get('prompt_tokens', '-')} / {total.get('generated_tokens', '-')} prompt / generated tokens",
                f"peak RAM of one process {_fmt(total.get('peak_rss_gib'))} GiB"]), ""))
        rows.append(("  the run's profile: stage", "wall s; engine start s; requests; prompt / generated tokens; peak", ""))
        for st in profile:
            rows.append((f"    {st['name']}", "; ".join([
                _fmt(st.get("wall_s"), digits=1), _fmt(st.get("engine_start_s"), digits=1), str(st.get("requests", "-")),
                f"{st.get('prompt_tokens', '-')} / {st.get('generated_tokens', '-')}", str(st.get("peak", "-"))]), ""))
    else:
        rows.append(("  the run's profile", d.get("profile_missing", "none"), ""))
    rows.append(("  bench's view: stage (wall; peak RSS / PSS GiB of the tree)", "", ""))
    for st in f["stages"]:
        rows.append((f"    {st['name']}", f"{_fmt(st['seconds'], ' s', 1)}; {_memory(st)}", ""))
    rows.append(("rerun of the finished demo on its store: model calls",
                 f"{s['worker_runs']}  ({_fmt(s['seconds'], ' s', 1)})", f"0 ({met[d['meets_target']]})"))
    check = d.get("plan_check") or {}
    if check.get("error"):
        rows.append(("plan model vs this run: FAILED", check["error"][:70], ""))
    elif check:
        from benchmarks.plan_check import table_rows

        rows += table_rows(check)
    return rows


def profile_stages(profile) -> list[dict]:
    """The run's profile as a list of stages with a name (it may come as a list, a {name: stage} mapping or
    {"stages": ...}); each stage's peak memory under "peak", whatever the run called it."""
    if isinstance(profile, dict) and "stages" in profile:
        profile = profile["stages"]
    if isinstance(profile, dict):
        profile = [{"name": name, **stage} for name, stage in profile.items() if isinstance(stage, dict)]
    if not isinstance(profile, list):
        return []
    if all(isinstance(s, dict) and isinstance(s.get("started"), (int, float)) for s in profile):
        profile = sorted(profile, key=lambda s: s["started"])  # run order (two sides may overlap)
    out = []
    for i, stage in enumerate(s for s in profile if isinstance(s, dict)):
        peak = next((f"{k}={v}" for k, v in stage.items() if k.startswith("peak") and v is not None), "-")
        out.append({**stage, "name": str(stage.get("name") or stage.get("stage") or f"stage {i + 1}"), "peak": peak})
    return out
