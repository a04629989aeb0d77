"""`asyncvla-ros video`: held-out sim episodes as a GIF (or MP4), with the planned chunks drawn over them.

    asyncvla-ros video --model asyncvla_ros/models/default --seeds 1000,1001 --out docs/episodes.gif

Each frame is the front camera as the policy sees it (scaled up), the wrist camera in a corner, and
the chunk planned at that tick projected into the image: one dot per step where the gripper would be
(forward kinematics of the step's joint targets), coloured by the rater's confidence (red 0, yellow
at the rater's threshold, green 1), a magenta ring on each step AFM regenerated, and the grey SFM
chunk beneath. The episodes run exactly as in `asyncvla-ros eval` (the same control path and seeds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SCALE = 3  # output pixels per camera pixel
EVERY = 2  # keep every EVERY-th tick (20 Hz control -> 10 frames/s)


def confidence_colour(p: float, threshold: float) -> tuple[int, int, int]:
    """Red at 0, yellow at `threshold`, green at 1 (the RViz markers' scale)."""
    if p < threshold:
        return (230, int(230 * p / threshold), 40)
    return (int(230 * (1 - (p - threshold) / (1 - threshold))), 200, 40)


def draw_frame(geometry, obs, result, step: int, threshold: float, label: str):
    """One video frame (PIL image) of tick `step`; `geometry` is the arm's sim.camera_geometry.CameraGeometry."""
    from PIL import Image, ImageDraw

    size = geometry.image_size_px
    frame = Image.fromarray(obs.images["front"]).resize((size * SCALE, size * SCALE), Image.BILINEAR)
    if "wrist" in obs.images:
        inset = Image.fromarray(obs.images["wrist"]).resize((size, size), Image.BILINEAR)
        frame.paste(inset, (size * SCALE - size - 4, 4))
    draw = ImageDraw.Draw(frame)
    chunk = result.chunk
    if chunk is not None:
        for actions, grey in ((chunk.sfm_actions, True), (chunk.actions, False)):
            uv = geometry.project("front", geometry.gripper_positions(actions), obs.joint_positions_rad) * SCALE
            points = [tuple(p) for p in uv if np.isfinite(p).all()]
            if len(points) > 1:
                draw.line(points, fill=(150, 150, 150) if grey else (255, 255, 255), width=1 if grey else 2)
            if grey:
                continue
            for (u, v), p, regen in zip(uv, chunk.confidence, chunk.regenerated):
                if not np.isfinite([u, v]).all():
                    continue
                r = 4
                draw.ellipse((u - r, v - r, u + r, v + r), fill=confidence_colour(float(p), threshold))
                if regen:
                    draw.ellipse((u - r - 3, v - r - 3, u + r + 3, v + r + 3), outline=(255, 0, 255), width=2)
    text = f"{label}  t={step / 20:.2f} s"
    if chunk is not None:
        text += f"  regenerated {int(chunk.regenerated.sum())}/{len(chunk.regenerated)}"
    elif result.holding:
        text += f"  holding: {result.reason}"
    draw.rectangle((0, size * SCALE - 16, size * SCALE, size * SCALE), fill=(0, 0, 0))
    draw.text((4, size * SCALE - 14), text, fill=(255, 255, 255))
    return frame


def record_episodes(policy, seeds, config, every: int = EVERY, progress=None) -> tuple[list, list]:
    """(frames, episode results) of `seeds` under `config` (an EvalConfig)."""
    from asyncvla_ros.evaluation.closed_loop import make_arm, run_episode
    from asyncvla_ros.sim.camera_geometry import CameraGeometry

    arm = make_arm(policy)
    geometry = CameraGeometry(arm)
    frames, results = [], []
    threshold = policy.config.rater.threshold
    try:
        for seed in seeds:
            def on_tick(step, obs, result, target, seed=seed):
                if step % every == 0:
                    frames.append(draw_frame(geometry, obs, result, step, threshold, f"seed {seed} {config.mode}"))
            result = run_episode(policy, arm, int(seed), config, on_tick=on_tick)
            results.append(result)
            frames.extend([frames[-1]] * 10)  # hold the last frame 1 s: the outcome
            if progress is not None:
                progress.update(1)
    finally:
        arm.close()
    return frames, results


def write_video(frames, path: Path, fps: float) -> None:
    """GIF through Pillow, or MP4 (H.264) through PyAV, by the file's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        palette = [f.convert("P", palette=1, colors=128) for f in frames]  # 1 = Image.ADAPTIVE
        palette[0].save(path, save_all=True, append_images=palette[1:], duration=int(1000 / fps), loop=0, optimize=True)
        return
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"--out {path}: write a .gif or an .mp4")
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main(argv: list[str] | None = None) -> int:
    from asyncvla_ros.evaluation.cli import parse_seeds
    from asyncvla_ros.evaluation.closed_loop import EvalConfig
    from asyncvla_ros.policy.config import ACT_MODES

    parser = argparse.ArgumentParser(prog="asyncvla-ros video", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="policy checkpoint directory; empty = the embedded default")
    parser.add_argument("--seeds", default="1000,1001", help="held-out episode seeds: start:stop or a,b,c")
    parser.add_argument("--mode", default="asyncvla", choices=ACT_MODES)
    parser.add_argument("--max-steps", type=int, default=300, help="ticks per episode (20 Hz)")
    parser.add_argument("--out", default="episodes.gif", help="output file, .gif or .mp4")
    opts = parser.parse_args(argv)
    try:
        seeds = parse_seeds(opts.seeds)
        config = EvalConfig(mode=opts.mode, max_steps=opts.max_steps)
        if Path(opts.out).suffix.lower() not in (".gif", ".mp4"):
            raise ValueError(f"--out {opts.out}: write a .gif or an .mp4")
    except ValueError as err:
        parser.error(str(err))
    from tqdm import tqdm

    from asyncvla_ros.policy.default import load_policy

    policy, _ = load_policy(opts.model, "cpu")
    with tqdm(total=len(seeds), desc="episodes", unit="ep") as bar:
        frames, results = record_episodes(policy, seeds, config, progress=bar)
    write_video(frames, Path(opts.out), fps=20 / EVERY)
    for r in results:
        print(f"seed {r.seed}: {'success' if r.success else 'failure'} after {r.steps} ticks ({r.instruction})")
    print(f"{opts.out}: {len(frames)} frames, {Path(opts.out).stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
