"""`asyncvla-ros train`: both training stages on a local LeRobotDataset.

    asyncvla-ros train --dataset data/sim_demos --out runs/tiny
    asyncvla-ros train --dataset DIR --out runs/3b --init /models/Qwen2.5-VL-3B-Instruct --device cuda --mixed-precision bf16
    accelerate launch --config_file config/accelerate/ddp.yaml -m asyncvla_ros.cli train --dataset DIR --out runs/ddp --device cuda
    asyncvla-ros train --dataset DIR --out runs/tiny --resume runs/tiny/checkpoints/stage1-step000500
    asyncvla-ros train --sim-episodes 600 --sim-workers 8 --out runs/tiny --device cuda --num-workers 8

Without --init a tiny policy is built (cameras, state and action sizes from the data, vocabulary from
its tasks). --sim-episodes runs the sim's scripted expert into memory instead of reading a dataset
(the same demonstrations `asyncvla-ros demos` records for those seeds; both may be combined);
--dagger-policy DIR adds episodes that policy drove and the expert labelled (training/dagger.py);
--dagger-save keeps them, and --dagger-data trains on kept ones again (DAgger aggregates its rounds).
Writes checkpoints/, tensorboard/, metrics.jsonl and final/ (the policy to run).
Started by `accelerate launch` or `torchrun`, each process trains on its share of every --batch-size
(the global batch), with the same result as one process (config/accelerate/ has the launch files).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
import uuid
from pathlib import Path

from asyncvla_ros.policy.config import TOKEN_PX, VISION_ENCODERS
from asyncvla_ros.training.config import MIXED_PRECISIONS, TrainConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asyncvla-ros train", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", action="append", default=[],
                   help="LeRobotDataset folder (local; never fetched); repeat to train on several with the same features")
    p.add_argument("--sim-episodes", type=int, default=0, help="also train on this many expert episodes run in the sim, in memory")
    p.add_argument("--sim-seed", type=int, default=0, help="seed of the first --sim-episodes episode (episode i: seed + i)")
    p.add_argument("--sim-workers", type=int, default=0, help="processes that run the --sim-episodes (0: in this process)")
    p.add_argument("--sim-action-noise-std", type=float, default=0.0, metavar="RAD",
                   help="DART noise on the arm while the --sim-episodes run (as `demos --action-noise-std`); 0 = off")
    p.add_argument("--sim-start-noise", type=float, default=0.02, metavar="RAD",
                   help="spread of the arm's start pose in the --sim-episodes (as `demos --start-noise`)")
    p.add_argument("--sim-displace-fraction", type=float, default=0.0, metavar="F",
                   help="fraction of the --sim-episodes in which the cube is moved once mid-approach and the expert "
                        "starts its grasp over (as `demos --displace-fraction`); 0 = none")
    p.add_argument("--sim-image-stride", type=int, default=1, metavar="N",
                   help="render the --sim-episodes' cameras at every Nth step only (rendering is most of their cost); a "
                        "sample's images are then the newest rendered ones, up to N - 1 steps older (needs time misalignment)")
    p.add_argument("--dagger-policy", default="", metavar="DIR",
                   help="also train on DAgger episodes: this policy drives the sim, the expert labels every state it reaches "
                        "with the chunk it would command (training/dagger.py)")
    p.add_argument("--dagger-episodes", type=int, default=100, help="--dagger-policy: episodes run")
    p.add_argument("--dagger-seed", type=int, default=100_000,
                   help="--dagger-policy: seed of the first episode (keep clear of the evaluation's seeds)")
    p.add_argument("--dagger-max-steps", type=int, default=300, help="--dagger-policy: ticks per episode at most")
    p.add_argument("--dagger-save", default="", metavar="DIR",
                   help="--dagger-policy: also write its episodes to DIR (a new folder), for later rounds' --dagger-data")
    p.add_argument("--dagger-data", action="append", default=[], metavar="DIR",
                   help="also train on the DAgger episodes an earlier --dagger-save wrote to DIR; repeatable")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--init", default="", help="start from this policy checkpoint, or from the weights of a Qwen2.5-VL directory")
    p.add_argument("--resume", default="", help="continue from a checkpoints/stage*-step* directory of a run")
    p.add_argument("--renormalize", action="store_true",
                   help="--init of a policy checkpoint: normalise by this data's statistics instead of the policy's own "
                        "(its weights were learnt in its own units, which a fine-tune keeps by default)")
    p.add_argument("--image-size-px", type=int, default=112, help="new tiny policy: square image size")
    p.add_argument("--chunk-len", type=int, default=10, help="new policy: actions per chunk (L)")
    p.add_argument("--history-len", type=int, default=20, help="new policy: executed actions as condition (K); 0 = no history")
    p.add_argument("--hidden-size", type=int, default=64, help="new tiny policy: decoder width")
    p.add_argument("--layers", type=int, default=2, help="new tiny policy: decoder layers")
    p.add_argument("--vision-hidden-size", type=int, default=32, help="new tiny policy: vision tower width")
    p.add_argument("--vision-depth", type=int, default=1, help="new tiny policy: vision tower blocks")
    p.add_argument("--vision-encoder", choices=VISION_ENCODERS, default="qwen",
                   help="new tiny policy: Qwen2.5-VL's vision tower, or the conv encoder (see BackboneConfig)")
    p.add_argument("--conv-width", type=int, default=16, help="new tiny policy, conv encoder: first-stage channels")
    p.add_argument("--no-image-position-embedding", action="store_true",
                   help="new tiny policy: no learned image-token position embedding (see BackboneConfig)")
    p.add_argument("--state-in-prompt", action="store_true", help="new policy: the state also enters the prompt as text")
    p.add_argument("--joint-units", default="",
                   help="units of the dataset's joint values, recorded in the checkpoint so nodes convert the robot's radians: "
                        "one of rad, deg, range_m100_100, range_0_100 for every joint, or a comma list with one per joint "
                        "(LeRobot's SO100 without use_degrees: range_m100_100 for the joints, range_0_100 for the gripper); "
                        "default rad for this package's sim data, required for other datasets")
    p.add_argument("--delta-actions", action="store_true",
                   help="new or fine-tuned (--init) policy: chunk targets relative to the current state (a[t+i] - s[t]) "
                        "instead of absolute")
    p.add_argument("--no-time-misalignment", action="store_true", help="train with synchronised semantics only")
    p.add_argument("--semantic-age-input", action=argparse.BooleanOptionalAction, default=False,
                   help="the policy reads how old its semantics are (ages up to one chunk), learnt from the time-misalignment "
                        "delays; a policy given --init without it gains it")
    p.add_argument("--sfm-only", action="store_true", help="plain SFM training (the 'w/o unified training' ablation)")
    defaults = TrainConfig()
    for name in ("steps", "rater_steps", "batch_size", "warmup_steps", "checkpoint_every", "log_every", "seed", "image_shift_px"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    p.add_argument("--keep-checkpoints", type=int, default=defaults.keep_checkpoints, metavar="N",
                   help="keep the run's N newest checkpoints, deleting older ones after each save (0 = all)")
    for name, heads in (("env_state_dims", "the prefix and encoder scene-state heads"),
                        ("action_env_state_dims", "the action-token scene-state head")):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name),
                       help=f"how many of the recorded scene state's values, from the first, {heads} regress "
                            "(0 = all; the sim's first 7 are the cube pose and the instructed area)")
    p.add_argument("--num-workers", type=int, default=defaults.num_workers,
                   help="processes that prepare batches ahead of the optimizer (0: in the training loop)")
    for name in ("lr_language_model", "lr_action_expert", "lr_vision", "lr_rater", "history_noise_rad", "state_noise_rad",
                 "history_dropout", "sfm_fraction", "prefix_fraction", "env_state_loss_weight", "encoder_env_state_loss_weight",
                 "action_env_state_loss_weight"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    p.add_argument("--ema-decay", type=float, default=defaults.ema_decay,
                   help="stage 1 keeps an exponential moving average of its weights with this decay (e.g. 0.999); "
                        "checkpoints and the final policy hold the average. 0 = off")
    p.add_argument("--device", default="cpu",
                   help="cpu or cuda[:N]; under accelerate launch / torchrun, cuda gives each process its own GPU")
    p.add_argument("--mixed-precision", choices=MIXED_PRECISIONS, default=None,
                   help="bf16: accelerate's bfloat16 autocast (GPU); default: the launcher's (accelerate launch's config "
                        "file), else no")
    p.add_argument("--bf16", action="store_true", help="the same as --mixed-precision bf16")
    p.add_argument("--gradient-checkpointing", action="store_true")
    return p


def new_policy(cameras, state_dim: int, action_dim: int, tasks, opts, pretrained_dir: str = ""):
    """A policy shaped by the data; the backbone random and tiny, or loaded from `pretrained_dir`.

    `tasks` is the instruction vocabulary of a new tiny tokenizer.
    """
    from asyncvla_ros.policy.config import ActionExpertConfig, BackboneConfig, PolicyConfig, tiny_vlm_config
    from asyncvla_ros.policy.policy import AsyncVLAPolicy

    size = opts.image_size_px
    encoder = "qwen" if pretrained_dir else opts.vision_encoder
    token_px = TOKEN_PX[encoder]
    config = PolicyConfig(
        backbone=BackboneConfig(camera_names=tuple(cameras), image_height_px=size, image_width_px=size,
                                max_prefix_tokens=len(cameras) * (size // token_px) ** 2 + 64, pretrained_dir=pretrained_dir or None,
                                vision_encoder=encoder, conv_width=opts.conv_width,
                                vlm_config=tiny_vlm_config(opts.hidden_size, opts.layers, opts.vision_hidden_size, opts.vision_depth),
                                # A pretrained backbone keeps its own architecture; a tiny one needs the embedding.
                                image_position_embedding=not (pretrained_dir or opts.no_image_position_embedding),
                                state_in_prompt=opts.state_in_prompt),
        expert=ActionExpertConfig(action_dim=action_dim, state_dim=state_dim, chunk_len=opts.chunk_len, history_len=opts.history_len,
                                  delta_actions=opts.delta_actions),
        model_id=new_model_id(bool(pretrained_dir)),
    )
    return AsyncVLAPolicy.build(config, list(tasks), seed=opts.seed)


def new_model_id(pretrained: bool) -> str:
    """A policy's id, new for every run that changes its weights: the nodes refuse semantic features
    from another model id, so a fine-tuned policy must not share its parent's."""
    return f"asyncvla-{'qwen' if pretrained else 'tiny'}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def joint_space(datasets, action_dim: int, units_option: str):
    """The policy's `JointSpaceConfig`: the datasets' joint names (their action feature's names) and units
    (`--joint-units`, or rad for this package's own sim data).

    Raises:
        SystemExit: units not given for a dataset recorded elsewhere, or not one per joint.
    """
    from asyncvla_ros.data.features import UNITS_KEY
    from asyncvla_ros.data.record import ROBOT_TYPE
    from asyncvla_ros.policy.config import JOINT_UNITS, JointSpaceConfig

    names = ()
    if datasets:
        names = tuple(str(n) for n in (datasets[0].meta.features["action"].get("names") or ()))
        if len(names) != action_dim:
            names = ()
    units = tuple(u.strip() for u in units_option.split(",") if u.strip())
    recorded = {d.meta.info.get(UNITS_KEY) for d in datasets} - {None}  # bag-to-dataset writes it
    if not units and len(recorded) == 1:
        units = (recorded.pop(),)
    if not units:
        foreign = [str(d.root) for d in datasets if d.meta.robot_type != ROBOT_TYPE and UNITS_KEY not in d.meta.info]
        if foreign:
            raise SystemExit(f"--dataset {foreign[0]} was recorded by another robot ({datasets[0].meta.robot_type!r}): give "
                             f"--joint-units, the units of its joint values ({', '.join(JOINT_UNITS)}; one for every joint, "
                             "or a comma list per joint), so the nodes can convert the robot's radians")
        return JointSpaceConfig(names)
    if len(units) == 1:
        units = units * action_dim
    if len(units) != action_dim:
        raise SystemExit(f"--joint-units: {len(units)} units for {action_dim} joints")
    try:
        return JointSpaceConfig(names, units)
    except ValueError as err:
        raise SystemExit(f"--joint-units: {err}") from None


def require_sim_shapes(flag: str, cameras, state_dim, action_dim) -> None:
    """SystemExit unless the data so far (None: none yet) has the sim's cameras and joint count."""
    from asyncvla_ros.data.features import CAMERA_KEYS
    from asyncvla_ros.sim.task import JOINT_NAMES

    if cameras is not None and cameras != list(CAMERA_KEYS):
        raise SystemExit(f"{flag}: the sim's cameras {list(CAMERA_KEYS)} are not the dataset's {cameras}")
    if state_dim is not None and (state_dim, action_dim) != (len(JOINT_NAMES),) * 2:
        raise SystemExit(f"{flag}: the sim's state/action size {len(JOINT_NAMES)} is not the dataset's {state_dim}/{action_dim}")


def dagger_data(opts, cameras, state_dim, action_dim, size: int, chunk_len: int, accelerator) -> list:
    """The --dagger-data episodes and the --dagger-policy ones (labelled with chunks of `chunk_len`, the
    trained policy's; written to --dagger-save by the main process), checked against the rest of the data
    (sim cameras, joints, image size)."""
    from asyncvla_ros.policy.checkpoint import POLICY_FILE, CheckpointError
    from asyncvla_ros.training.dagger import dagger_episodes, load_episodes, save_episodes
    from asyncvla_ros.training.data_parallel import once_for_all

    flag = "--dagger-policy" if opts.dagger_policy else "--dagger-data"
    require_sim_shapes(flag, cameras, state_dim, action_dim)
    sources: list[tuple[str, list]] = []
    for folder in opts.dagger_data:
        try:
            sources.append((f"--dagger-data {folder}", load_episodes(folder)))
        except ValueError as exc:
            raise SystemExit(f"--dagger-data: {exc}") from exc
    if opts.dagger_policy:
        if not (Path(opts.dagger_policy) / POLICY_FILE).is_file():
            raise SystemExit(f"--dagger-policy {opts.dagger_policy}: no policy checkpoint there ({POLICY_FILE} missing)")
        try:
            episodes, solved = once_for_all(accelerator, lambda: dagger_episodes(
                opts.dagger_policy, opts.dagger_episodes, opts.dagger_seed, chunk_len, max_steps=opts.dagger_max_steps,
                workers=max(1, opts.sim_workers), progress=True))
        except (ValueError, CheckpointError) as exc:  # a directory that holds no policy, bad counts
            raise SystemExit(f"--dagger-policy {opts.dagger_policy}: {exc}") from exc
        if opts.dagger_save and accelerator.is_main_process:
            save_episodes(episodes, opts.dagger_save, {"policy": str(opts.dagger_policy), "seed": opts.dagger_seed,
                                                       "count": opts.dagger_episodes, "max_steps": opts.dagger_max_steps,
                                                       "chunk_len": chunk_len, "solved": solved})
        sources.append((f"--dagger-policy {opts.dagger_policy}", episodes))
    for source, episodes in sources:
        shape = episodes[0].frames(0)[0].shape
        if shape[:2] != (size, size):
            raise SystemExit(f"{source}: its images are {shape[0]} px, the trained policy wants {size} px")
        labels = episodes[0].chunk_labels  # None: targets from the episode's own actions (saved without labels)
        if labels is not None and labels.shape[1] < chunk_len:
            raise SystemExit(f"{source}: labelled with {labels.shape[1]}-step chunks, the policy's are {chunk_len}")
    return [e for _, episodes in sources for e in episodes]


def check_frames(dataset) -> None:
    """Read each episode's first frame before anything is written: a video that cannot be decoded is an
    error now, naming the file, not a traceback at the first batch with an empty run directory left."""
    import numpy as np

    first_rows = np.unique(np.asarray(dataset.hf_dataset.select_columns(["episode_index"]).with_format("numpy")[:]["episode_index"]),
                           return_index=True)[1]
    for row in first_rows:
        dataset[int(row)]


def load_datasets(paths: list[str]):
    """Every dataset, checked to have the same cameras and state/action shapes. Returns (datasets, cameras)."""
    from asyncvla_ros.data.load import load_dataset
    from asyncvla_ros.training.lerobot_episodes import camera_names, required_features

    datasets, cameras = [], None
    for path in paths:
        probe = load_dataset(path, required=["observation.state", "action", "task"])
        these = camera_names(probe)
        dataset = load_dataset(path, required=required_features(these))
        check_frames(dataset)
        if cameras is None:
            cameras, first = these, dataset
        elif these != cameras:
            raise SystemExit(f"--dataset {path}: cameras {these} differ from {paths[0]}'s {cameras}")
        else:
            for key in ("observation.state", "action"):
                a, b = tuple(first.meta.features[key]["shape"]), tuple(dataset.meta.features[key]["shape"])
                if a != b:
                    raise SystemExit(f"--dataset {path}: {key} has shape {b}, {paths[0]} has {a}")
        datasets.append(dataset)
    return datasets, cameras


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    from asyncvla_ros.policy.checkpoint import POLICY_FILE
    from asyncvla_ros.policy.policy import AsyncVLAPolicy
    from asyncvla_ros.training.data_parallel import new_accelerator, once_for_all
    from asyncvla_ros.training.lerobot_episodes import episodes_from_lerobot
    from asyncvla_ros.training.samples import ChunkSamples
    from asyncvla_ros.training.trainer import Trainer

    if opts.bf16 and opts.mixed_precision not in (None, "bf16"):
        raise SystemExit(f"--bf16 contradicts --mixed-precision {opts.mixed_precision}: give one of them")
    # One per process; under `accelerate launch` / `torchrun` this joins the others.
    accelerator = new_accelerator(opts.device, "bf16" if opts.bf16 else opts.mixed_precision)
    main_process = accelerator.is_main_process
    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = TrainConfig(
        **{f.name: getattr(opts, f.name) for f in dataclasses.fields(TrainConfig)
           if hasattr(opts, f.name) and f.name != "mixed_precision"},
        unified=not opts.sfm_only, time_misalignment=not opts.no_time_misalignment,
        mixed_precision=accelerator.mixed_precision,  # the option's, else the launcher's
    )
    if not opts.dataset and opts.sim_episodes <= 0 and not opts.dagger_policy and not opts.dagger_data:
        raise SystemExit("asyncvla-ros train: give --dataset DIR (repeatable), --sim-episodes N, --dagger-policy DIR "
                         "and/or --dagger-data DIR")
    if opts.sim_image_stride < 1:
        raise SystemExit(f"--sim-image-stride: must be >= 1, got {opts.sim_image_stride}")
    if opts.sim_image_stride > 1 and not config.time_misalignment:
        raise SystemExit("--sim-image-stride > 1 gives samples older images than their state; drop --no-time-misalignment")
    if opts.dagger_save and not opts.dagger_policy:  # refused now, not after the demonstrations have run
        raise SystemExit("--dagger-save: give --dagger-policy, the policy whose episodes it keeps")
    if opts.dagger_save and Path(opts.dagger_save).exists() and any(Path(opts.dagger_save).iterdir()):
        raise SystemExit(f"--dagger-save {opts.dagger_save}: not empty; give a new folder")
    episodes, cameras, tasks, state_dim, action_dim, failed = [], None, [], None, None, []
    if opts.dataset:
        datasets, cameras = load_datasets(opts.dataset)
        tasks = list(dict.fromkeys(t for d in datasets for t in d.meta.tasks.index))
        features = datasets[0].meta.features
        state_dim, action_dim = int(features["observation.state"]["shape"][0]), int(features["action"]["shape"][0])
    fine_tuned = bool(opts.init) and (Path(opts.init) / POLICY_FILE).is_file()
    if opts.renormalize and not fine_tuned:
        raise SystemExit("--renormalize: only with --init of a policy checkpoint (a new policy is always normalised by its data)")
    if opts.resume or fine_tuned:
        policy = AsyncVLAPolicy.from_pretrained(opts.resume or opts.init, **({} if opts.resume else {"dtype": "float32"}))
        if not opts.resume:  # a fine-tune is a new model (a resumed run keeps the id its run began with)
            policy.config.model_id = new_model_id(bool(policy.config.backbone.pretrained_dir))
        size = policy.config.backbone.image_height_px
    else:
        policy, size = None, opts.image_size_px
    if opts.sim_episodes > 0:
        from asyncvla_ros.data.features import CAMERA_KEYS
        from asyncvla_ros.sim import task
        from asyncvla_ros.training.sim_episodes import sim_episodes

        require_sim_shapes("--sim-episodes", cameras, state_dim, action_dim)
        cameras = list(CAMERA_KEYS)
        tasks = list(dict.fromkeys(tasks + list(task.INSTRUCTIONS)))
        state_dim = action_dim = len(task.JOINT_NAMES)
        sim, failed = once_for_all(accelerator, lambda: sim_episodes(
            opts.sim_episodes, opts.sim_seed, image_size_px=size, workers=opts.sim_workers, progress=True,
            action_noise_std_rad=opts.sim_action_noise_std, start_noise_rad=opts.sim_start_noise,
            displace_fraction=opts.sim_displace_fraction, image_stride=opts.sim_image_stride))
        logging.getLogger(__name__).info("sim demonstrations: %d of %d episodes succeeded", len(sim), opts.sim_episodes)
        episodes += sim
    if opts.dagger_policy or opts.dagger_data:
        from asyncvla_ros.data.features import CAMERA_KEYS
        from asyncvla_ros.sim.task import INSTRUCTIONS, JOINT_NAMES

        chunk_len = policy.config.expert.chunk_len if policy is not None else opts.chunk_len
        episodes += dagger_data(opts, cameras, state_dim, action_dim, size, chunk_len, accelerator)
        cameras, state_dim = cameras or list(CAMERA_KEYS), state_dim or len(JOINT_NAMES)
        action_dim, tasks = state_dim, list(dict.fromkeys(tasks + list(INSTRUCTIONS)))
    joints = joint_space(datasets if opts.dataset else [], action_dim, opts.joint_units)
    if policy is None:
        policy = new_policy(cameras, state_dim, action_dim, tasks, opts, pretrained_dir=opts.init)
        policy.config.joints = joints
    else:  # resumed or fine-tuned: the data must be in the policy's units (names compared where both have them)
        have, n = policy.config.joints, action_dim
        if (have.units or ("rad",) * n) != (joints.units or ("rad",) * n) or (have.names and joints.names and have.names != joints.names):
            raise SystemExit(f"the policy's joints {have} are not the data's {joints}")
    if opts.delta_actions and not opts.resume and not policy.config.expert.delta_actions:
        # Fine-tuned (--init) into a delta policy: the chunk statistics are the data's deltas (Trainer.fit).
        policy.config.expert = dataclasses.replace(policy.config.expert, delta_actions=True)
    if config.prefix_fraction and not policy.config.expert.continuation_prefix:
        # A new policy, or one fine-tuned for continuation: prefixes as long as the longest plan delay (L / 2).
        e = policy.config.expert
        policy.config.expert = dataclasses.replace(e, continuation_prefix=e.chunk_len // 2)
    if tuple(policy.config.backbone.camera_names) != tuple(cameras):
        raise SystemExit(f"the policy's cameras {list(policy.config.backbone.camera_names)} are not the data's {cameras}")
    bb, e = policy.config.backbone, policy.config.expert
    if opts.dataset:
        episodes = [ep for d in datasets for ep in episodes_from_lerobot(d, cameras, (bb.image_height_px, bb.image_width_px))] + episodes
    samples = ChunkSamples(episodes, e.chunk_len, e.history_len)
    if opts.semantic_age_input and not e.semantic_age_max_s:
        if not config.time_misalignment:
            raise SystemExit("--semantic-age-input learns the age from the time-misalignment delays; drop --no-time-misalignment")
        try:
            policy.add_semantic_age_input(e.chunk_len / samples.fps)  # the delays drawn: up to one chunk
        except ValueError as err:
            raise SystemExit(f"--semantic-age-input: {err}") from err
    if opts.resume:
        trainer = Trainer.resume(opts.resume, samples, opts.out, config, accelerator=accelerator)
    else:
        trainer = Trainer(policy, samples, config, opts.out, keep_normalizer=fine_tuned and not opts.renormalize,
                          accelerator=accelerator)
    t0 = time.perf_counter()
    final = trainer.fit()
    report = {"final": str(final), "episodes": len(episodes), "sim_failed_seeds": failed, "frames": len(samples),
              "seconds": round(time.perf_counter() - t0, 1), "device": config.device,
              "processes": accelerator.num_processes, "engine": accelerator.distributed_type.value,
              "config": dataclasses.asdict(config)}
    accelerator.end_training()  # leaves the process group (a no-op for a single process)
    if main_process:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
