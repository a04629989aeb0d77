"""The re-run's report: PNG plots and a Markdown + HTML summary of recorded vs recomputed chunks.

`overview.png` (the main plot), top to bottom, against bag time (s since the bag's start), with the
chunks the re-run could not plan shaded (their semantic refresh predates the recording):
1. first step of each chunk per joint: recorded (solid) vs recomputed (dashed), rad;
2. largest |recorded - recomputed| over the chunk's actions, per tick (log scale), rad;
3. the rater's confidence per chunk step (heat map, recomputed); steps below 0.5 are AFM's candidates;
4. regenerated steps: recorded only, recomputed only, both;
5. semantic age of each chunk (state stamp - semantic stamp), recorded vs recomputed, s;
6. stage latencies (SFM, rater, AFM), recorded vs recomputed, ms.
`chunks.png` shows a few whole chunks: recorded final, recomputed SFM and final, per joint.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from asyncvla_ros.bags.recording import stamp_ns
from asyncvla_ros.bags.rerun import MISSED_BY_RECORDER, MISSING_NAMES, STATE_NOT_IN_BAG, RerunResult
from asyncvla_ros.bags.semantic_replay import BEFORE_RECORDING, NOT_IN_BAG

MATCH_TOL_RAD = 1e-5  # recomputed chunks within this of the recorded ones count as reproduced


def _recorded_actions(c) -> tuple[np.ndarray, np.ndarray]:
    shape = (int(c.horizon), int(c.action_dim))
    return np.asarray(c.actions, np.float64).reshape(shape), np.asarray(c.sfm_actions, np.float64).reshape(shape)


def compare(result: RerunResult) -> dict:
    """Figures of recorded vs recomputed chunks (every tick that has both)."""
    pairs = [t for t in result.chunk_ticks if t.recorded is not None]
    diffs = np.array([np.abs(_recorded_actions(t.recorded)[0] - t.chunk.actions).max() for t in pairs]) if pairs else np.zeros(0)
    chunks = result.chunk_ticks
    rec_chunks = [t.recorded for t in result.ticks if t.recorded is not None]

    def p(values, q):
        values = [v for v in values if np.isfinite(v)]
        return float(np.percentile(values, q)) if values else float("nan")

    ticks_n = max(len(chunks), 1)
    return {
        "ticks": len(result.ticks),
        "recomputed_chunks": len(chunks),
        "recorded_chunks": len(rec_chunks),
        "compared_chunks": len(pairs),
        "chunks_before_recording": sum(t.skipped == BEFORE_RECORDING for t in result.ticks),
        "chunks_with_refresh_not_in_bag": sum(t.skipped == NOT_IN_BAG for t in result.ticks),
        "chunks_without_joint_state": sum(t.skipped == STATE_NOT_IN_BAG for t in result.ticks),
        # Chunks the node planned (its chunk ids count them) that the bag lacks: a recorder that fell behind.
        "chunks_missed_by_recorder": sum(t.reason == MISSED_BY_RECORDER for t in result.ticks),
        "reproduced_chunks": int((diffs <= MATCH_TOL_RAD).sum()),
        "chunks_with_inputs_missing_from_bag": sum(not t.inputs_complete for t in pairs),
        "reproduced_of_chunks_with_complete_inputs": int(sum(d <= MATCH_TOL_RAD for t, d in zip(pairs, diffs) if t.inputs_complete)),
        # By the first input each lacks, and (should there be any) the ticks of complete chunks that differ.
        **{f"inputs_missing_{name}": sum(t.missing == why for t in pairs) for why, name in MISSING_NAMES.items()},
        "unreproduced_ticks_with_complete_inputs": [t.tick for t, d in zip(pairs, diffs) if t.inputs_complete and d > MATCH_TOL_RAD][:20],
        "first_reproduced_tick": next((t.tick for t, d in zip(pairs, diffs) if d <= MATCH_TOL_RAD), None),
        "max_abs_diff_rad": float(diffs.max()) if diffs.size else float("nan"),
        "median_abs_diff_rad": float(np.median(diffs)) if diffs.size else float("nan"),
        "holds": sum(t.holding for t in result.ticks),
        # Commands whose recorded safety-filter verdict went into the history (of them, clamped ones).
        "commands_filtered_into_history": sum(bool(t.filtered) for t in result.ticks),
        "commands_clamped_by_filter": sum(t.filtered == "clamped" for t in result.ticks),
        "regenerated_per_chunk_recorded": float(np.mean([np.sum(c.regenerated) for c in rec_chunks])) if rec_chunks else float("nan"),
        "regenerated_per_chunk_recomputed": float(np.mean([t.chunk.regenerated.sum() for t in chunks])) if chunks else float("nan"),
        "confidence_mean_recomputed": float(np.mean([t.chunk.confidence.mean() for t in chunks])) if chunks else float("nan"),
        "semantic_age_s_p50_recorded": p([c.semantic_age_s for c in rec_chunks], 50),
        "semantic_age_s_max_recorded": p([c.semantic_age_s for c in rec_chunks], 100),
        "semantic_age_s_p50_recomputed": p([t.semantic_age_s for t in chunks], 50),
        "semantic_age_s_max_recomputed": p([t.semantic_age_s for t in chunks], 100),
        "encodes": len(result.encodes),
        "encode_ms_p50_recomputed": p([e.encode_ms for e in result.encodes], 50),
        "encode_ms_p50_recorded": p([e.recorded_encode_ms for e in result.encodes], 50),
        **{f"{s}_ms_p50_recorded": p([getattr(c, f"{s}_time_ms") for c in rec_chunks], 50) for s in ("sfm", "rater", "afm", "total")},
        **{f"{s}_ms_p50_recomputed": p([getattr(t.chunk, f"{s}_ms") for t in chunks], 50) for s in ("sfm", "rater", "afm", "total")},
        "wall_s": result.wall_s,
        "wall_ms_per_tick": result.wall_s * 1e3 / ticks_n,
    }


def _t(result: RerunResult, ns: int) -> float:
    return (ns - result.start_ns) * 1e-9


def _skipped_runs(result: RerunResult) -> list[tuple[float, float]]:
    """(start, end) bag times of each run of consecutive recorded chunks the re-run did not plan."""
    runs, start, last = [], None, None
    for t in result.ticks:
        if t.recorded is None:
            continue
        x = _t(result, t.state_stamp_ns)
        if t.skipped:
            start, last = (x if start is None else start), x
        elif start is not None:
            runs.append((start, last))
            start = None
    if start is not None:
        runs.append((start, last))
    return runs


def plot_overview(result: RerunResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    chunks = result.chunk_ticks
    recorded = [t for t in result.ticks if t.recorded is not None]
    fig, axes = plt.subplots(6, 1, figsize=(12, 17), sharex=True, constrained_layout=True)
    colors = plt.cm.tab10(np.arange(len(result.joint_names)))
    runs = _skipped_runs(result)
    for a, b in runs:
        for ax in axes:
            ax.axvspan(a, b, color="0.85", zorder=0)
    if runs:
        axes[1].text(runs[0][0], 0.03, " shaded: not re-run (" + "; ".join(sorted({t.skipped for t in result.ticks if t.skipped})) + ")",
                     transform=axes[1].get_xaxis_transform(), va="bottom", fontsize=7, color="0.3")

    ax = axes[0]
    if recorded:
        tr = np.array([_t(result, stamp_ns(t.recorded.header.stamp)) for t in recorded])
        first = np.array([_recorded_actions(t.recorded)[0][0] for t in recorded])
        for j, name in enumerate(result.joint_names):
            ax.plot(tr, first[:, j], "-", color=colors[j], lw=2.5, alpha=0.45, label=f"{name} recorded")
    if chunks:
        tc = np.array([_t(result, t.state_stamp_ns) for t in chunks])
        first = np.array([t.chunk.actions[0] for t in chunks])
        for j, name in enumerate(result.joint_names):
            ax.plot(tc, first[:, j], "--", color=colors[j], lw=1.0, label=f"{name} recomputed")
    ax.set_ylabel("chunk step 0 target (rad)")
    ax.set_title(f"recorded (solid, wide) vs recomputed (dashed): {Path(result.bag).name}; mode {result.mode}, "
                 f"seed {result.seed}, semantics {result.semantics}")
    ax.legend(ncol=4, fontsize=7, loc="upper left")

    ax = axes[1]
    pairs = [t for t in chunks if t.recorded is not None]
    if pairs:
        d = np.array([np.abs(_recorded_actions(t.recorded)[0] - t.chunk.actions).max() for t in pairs])
        ax.semilogy([_t(result, t.state_stamp_ns) for t in pairs], np.maximum(d, 1e-9), ".", ms=4)
        missing = [(t, x) for t, x in zip(pairs, d) if not t.inputs_complete]
        if missing:
            ax.semilogy([_t(result, t.state_stamp_ns) for t, _ in missing], [max(x, 1e-9) for _, x in missing], "x",
                        color="C3", label="inputs missing from the bag")
        ax.text(0.99, 0.03, "identical chunks are drawn at 1e-9", transform=ax.transAxes, ha="right", fontsize=7)
        ax.legend(fontsize=8, loc="upper left")
        ax.axhline(MATCH_TOL_RAD, color="k", lw=0.8, ls=":", label=f"reproduced below {MATCH_TOL_RAD:g} rad")
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no recorded chunks to compare", transform=ax.transAxes, ha="center")
    ax.set_ylabel("max |recorded - recomputed| (rad)")

    if chunks:
        tc = np.array([_t(result, t.state_stamp_ns) for t in chunks])
        # Column edges halfway between ticks (chunks are irregular in time: holds leave gaps).
        gap = np.median(np.diff(tc)) if len(tc) > 1 else 0.05
        edges = np.concatenate([[tc[0] - gap / 2], (tc[1:] + tc[:-1]) / 2, [tc[-1] + gap / 2]])
        rows = np.arange(chunks[0].chunk.confidence.size + 1) - 0.5
        conf = np.array([t.chunk.confidence for t in chunks]).T  # (L, ticks)
        mesh = axes[2].pcolormesh(edges, rows, conf, cmap="viridis", vmin=0, vmax=1)
        fig.colorbar(mesh, ax=axes[2], label="confidence p_l")
        re = np.array([t.chunk.regenerated for t in chunks]).astype(int)
        rec = np.array([np.asarray(t.recorded.regenerated, bool) if t.recorded is not None and len(t.recorded.regenerated) == re.shape[1]
                        else np.zeros(re.shape[1], bool) for t in chunks]).astype(int)
        code = (rec + 2 * re).T  # 0 neither, 1 recorded only, 2 recomputed only, 3 both
        cmap = ListedColormap(["#f2f2f2", "#1f77b4", "#d62728", "#6a3d9a"])
        mesh = axes[3].pcolormesh(edges, rows, code, cmap=cmap, vmin=-0.5, vmax=3.5)
        bar = fig.colorbar(mesh, ax=axes[3], ticks=[0, 1, 2, 3])
        bar.ax.set_yticklabels(["kept", "recorded only", "recomputed only", "both"])
    axes[2].set_ylabel("chunk step")
    axes[3].set_ylabel("regenerated step")

    ax = axes[4]
    if recorded:
        ax.plot([_t(result, stamp_ns(t.recorded.header.stamp)) for t in recorded], [t.recorded.semantic_age_s for t in recorded],
                "-", lw=2.5, alpha=0.45, label="recorded")
    if chunks:
        ax.plot([_t(result, t.state_stamp_ns) for t in chunks], [t.semantic_age_s for t in chunks], "--", lw=1, label="recomputed")
    if result.config is not None:
        ax.axhline(result.config.max_semantic_age_s, color="k", lw=0.8, ls=":", label="hold limit")
    ax.set_ylabel("semantic age (s)")
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[5]
    for stage, color in (("sfm", "C0"), ("rater", "C1"), ("afm", "C2")):
        if recorded:
            ax.plot([_t(result, stamp_ns(t.recorded.header.stamp)) for t in recorded],
                    [getattr(t.recorded, f"{stage}_time_ms") for t in recorded], "-", color=color, lw=2.5, alpha=0.45,
                    label=f"{stage.upper()} recorded")
        if chunks:
            ax.plot([_t(result, t.state_stamp_ns) for t in chunks], [getattr(t.chunk, f"{stage}_ms") for t in chunks], "--",
                    color=color, lw=1, label=f"{stage.upper()} recomputed")
    ax.set_ylabel("stage latency (ms)")
    ax.set_xlabel("bag time (s)")
    ax.legend(ncol=3, fontsize=8, loc="upper left")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_chunks(result: RerunResult, path: Path, count: int = 4) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chunks = [t for t in result.chunk_ticks if t.recorded is not None] or result.chunk_ticks
    if not chunks:
        return
    picks = [chunks[i] for i in np.unique(np.linspace(0, len(chunks) - 1, count).round().astype(int))]
    n_j = len(result.joint_names)
    fig, axes = plt.subplots(len(picks), n_j, figsize=(2.4 * n_j, 2.2 * len(picks)), squeeze=False, constrained_layout=True)
    for r, t in enumerate(picks):
        c = t.chunk
        steps = np.arange(c.actions.shape[0])
        rec = _recorded_actions(t.recorded)[0] if t.recorded is not None else None
        for j, name in enumerate(result.joint_names):
            ax = axes[r, j]
            if rec is not None:
                ax.plot(steps, rec[:, j], "-", color="k", lw=2.5, alpha=0.35, label="recorded")
            ax.plot(steps, c.sfm_actions[:, j], ":", color="C0", label="recomputed SFM")
            ax.plot(steps, c.actions[:, j], "--", color="C3", label="recomputed final")
            regen = np.flatnonzero(c.regenerated)
            ax.plot(regen, c.actions[regen, j], "o", color="C3", ms=3)
            if r == 0:
                ax.set_title(name, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"tick {t.tick}\n(rad)", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle("whole chunks: recorded, recomputed SFM and final (dots: steps AFM regenerated)", fontsize=10)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _rows(summary: dict) -> list[tuple[str, str]]:
    return [(k, f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in summary.items()]


def write_report(result: RerunResult, out_dir: Path) -> dict:
    """Write overview.png, chunks.png, summary.json, report.md and report.html into `out_dir`; return the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = compare(result)
    plot_overview(result, out_dir / "overview.png")
    plot_chunks(result, out_dir / "chunks.png")
    setup = [("bag", result.bag), ("model", result.model_id), ("recorded with model", result.recorded_model_id),
             ("mode", result.mode), ("seed base", str(result.seed)), ("tick schedule", result.schedule),
             ("semantics", result.semantics), ("joints", ", ".join(result.joint_names))]
    (out_dir / "summary.json").write_text(json.dumps({"setup": dict(setup), "figures": summary}, indent=2) + "\n")
    skipped = summary["chunks_before_recording"] + summary["chunks_with_refresh_not_in_bag"] + summary["chunks_without_joint_state"]
    reproduced = (f"{summary['reproduced_chunks']} of {summary['compared_chunks']} re-run chunks reproduced within "
                  f"{MATCH_TOL_RAD:g} rad (first at tick {summary['first_reproduced_tick']}); largest difference "
                  f"{summary['max_abs_diff_rad']:.3g} rad. {summary['chunks_with_inputs_missing_from_bag']} chunks rest on something the bag lacks (by the first "
                  "input each lacks: " + ", ".join(f"{summary['inputs_missing_' + n]} {n.replace('_', ' ')}" for n in MISSING_NAMES.values())
                  + f"); of the others, {summary['reproduced_of_chunks_with_complete_inputs']} were reproduced. "
                  f"{skipped} of the {summary['recorded_chunks']} recorded chunks were not re-run: "
                  f"{summary['chunks_before_recording']} rest on a semantic refresh of frames captured before the recording began, "
                  f"{summary['chunks_with_refresh_not_in_bag']} on one whose frames are not in the bag, "
                  f"{summary['chunks_without_joint_state']} came before the bag's first joint state; the node's own chunks "
                  "carried the re-run's ensembling and history through them. "
                  f"The bag lacks {summary['chunks_missed_by_recorder']} chunks the node planned (a recorder that fell behind).")
    how = ("overview.png, top to bottom against bag time: each chunk's first target per joint (recorded wide and "
           "pale, recomputed dashed); the largest recorded-vs-recomputed difference per chunk; the rater's "
           "confidence per chunk step; which steps AFM regenerated (recorded, recomputed or both); the semantic "
           "age of each chunk; the SFM/rater/AFM latencies.")
    md = [f"# Re-run of `{Path(result.bag).name}`", "", reproduced, "", "| setting | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in setup]
    md += ["", "| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in _rows(summary)]
    md += ["", "![overview](overview.png)", "", how, "", "![chunks](chunks.png)", ""]
    (out_dir / "report.md").write_text("\n".join(md))
    table = lambda rows: "<table>" + "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows) + "</table>"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Re-run of {html.escape(Path(result.bag).name)}</title>"
            "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}td{padding:2px 10px;border-bottom:1px solid #ddd}"
            "img{max-width:100%}</style></head><body>"
            f"<h1>Re-run of {html.escape(Path(result.bag).name)}</h1><p>{html.escape(reproduced)}</p>"
            f"{table(setup)}<h2>Figures</h2>{table(_rows(summary))}<h2>Overview</h2><img src='overview.png'>"
            f"<p>{html.escape(how)}</p><h2>Whole chunks</h2><img src='chunks.png'></body></html>")
    (out_dir / "report.html").write_text(page)
    return summary
