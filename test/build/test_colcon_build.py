"""The package builds with colcon, and its install space works as a ROS 2 package.

Builds this source tree in a throwaway colcon workspace (as a user's `colcon build` would, without
--symlink-install), then, with the install space sourced, checks that the generated messages import
and survive an rclpy serialization round trip, that a rosbag2 reader (rosbags) decodes the same bytes,
and that every node executable is installed where `ros2 run` looks for it.

Needs colcon, CMake, a compiler and ROS 2's build packages: a sourced ROS 2 install, or the ros-*
wheels in this interpreter's environment (scripts/setup_env.sh sets those up, including the
/opt/python path fixes the wheels need). Skipped, with the reason, when they are missing.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = 'asyncvla_ros'

# The node executables CMakeLists.txt declares, and the module each must run.
EXPECTED_NODES = {
    'camera_node': 'asyncvla_ros.nodes.camera_node',
    'semantic_node': 'asyncvla_ros.nodes.semantic_node',
    'action_node': 'asyncvla_ros.nodes.action_node',
    'safety_filter_node': 'asyncvla_ros.nodes.safety_filter_node',
    'driver_node': 'asyncvla_ros.nodes.driver_node',
}

BUILD_TIMEOUT_S = 300


def _ros_build_env():
    """Environment for colcon: where CMake finds ament and rosidl, or None if nowhere.

    A sourced ROS 2 install sets AMENT_PREFIX_PATH itself. With the ros-* wheels, the venv root is
    laid out like an install prefix (share/ament_cmake, ...), so both paths point at it.
    """
    env = dict(os.environ)
    if env.get('AMENT_PREFIX_PATH'):
        return env
    prefix = pathlib.Path(sys.prefix)
    if not (prefix / 'share' / 'ament_cmake').is_dir():
        return None
    env['AMENT_PREFIX_PATH'] = str(prefix)
    env['CMAKE_PREFIX_PATH'] = os.pathsep.join(filter(None, [str(prefix), env.get('CMAKE_PREFIX_PATH')]))
    # colcon and CMake must run this interpreter's tools, not whatever else is first on PATH.
    env['PATH'] = os.pathsep.join([sysconfig.get_path('scripts'), env.get('PATH', '')])
    return env


def _find_colcon():
    """This interpreter's colcon if it has one (a venv need not be activated), else the one on PATH."""
    beside = pathlib.Path(sysconfig.get_path('scripts')) / 'colcon'
    return str(beside) if beside.exists() else shutil.which('colcon')


@pytest.fixture(scope='module')
def install_space(tmp_path_factory):
    """Builds the package in a fresh workspace; returns its install space (<ws>/install)."""
    colcon = _find_colcon()
    if colcon is None:
        pytest.skip('colcon is not installed (pip install colcon-common-extensions, or scripts/setup_env.sh)')
    if shutil.which('cmake') is None:
        pytest.skip('cmake is not installed')
    env = _ros_build_env()
    if env is None:
        pytest.skip('no ROS 2 build tools: source a ROS 2 install or install the ros-* wheels '
                    '(scripts/setup_env.sh)')

    ws = tmp_path_factory.mktemp('colcon_ws')
    (ws / 'src').mkdir()
    # A link rather than a copy: the build must see the tree exactly as it is, with nothing picked.
    (ws / 'src' / PACKAGE).symlink_to(REPO, target_is_directory=True)
    cmd = [
        colcon, 'build',
        '--event-handlers', 'console_direct+',
        # The interpreter the bindings are built for and the node launchers run under.
        '--cmake-args', f'-DPython3_EXECUTABLE={sys.executable}',
    ]
    try:
        result = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True,
                                timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f'colcon build took over {BUILD_TIMEOUT_S} s in {ws}')
    if result.returncode != 0:
        hint = ''
        if '/opt/python/' in result.stdout + result.stderr:
            hint = '\nThe ROS wheels need the /opt/python path fixes: run scripts/setup_env.sh.'
        tail = '\n'.join((result.stdout + result.stderr).splitlines()[-60:])
        pytest.fail(f'colcon build failed (exit {result.returncode}) in {ws}:\n{tail}{hint}')
    return ws / 'install'


# Runs inside the sourced install space: builds one message of each type, round-trips it through
# rclpy's serializer, and prints the serialized bytes for the rosbags check. Every float is exact in
# float32: a float32 field holds the Python float it was given until it goes over the wire.
_ROUND_TRIP_SCRIPT = r'''
import json, sys
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
import asyncvla_ros
from asyncvla_ros.msg import ActionChunk, SafetyEvent, SemanticFeatures, TensorBlob

features = SemanticFeatures(
    seq=7, instruction='pick up the red cube', model_id='tiny-asyncvla-test',
    feature_kind='prefix_kv_cache', num_prefix_tokens=3, encode_time_ms=12.5,
    transport=SemanticFeatures.TRANSPORT_INLINE, state_stamp=Time(sec=5, nanosec=250),
    tensors=[
        TensorBlob(name='layer_00.key', dtype='float32', shape=[1, 2, 3, 1],
                   data=bytes(range(24))),
        TensorBlob(name='layer_00.value', dtype='bfloat16', shape=[1, 2, 3, 1], data=b''),
    ])
features.header.stamp = Time(sec=5, nanosec=125)
features.header.frame_id = 'wrist_camera'

chunk = ActionChunk(
    semantic_stamp=Time(sec=4, nanosec=500000000), semantic_age_s=0.75, semantic_seq=7,
    chunk_id=42, step_period_s=0.0625, joint_names=['shoulder', 'elbow'], horizon=3, action_dim=2,
    actions=[0.0, 0.5, -0.25, 1.0, 0.125, -1.5], sfm_actions=[0.0, 0.25, -0.5, 1.0, 0.0, -1.0],
    confidence=[0.875, 0.25, 0.75], regenerated=[False, True, False], sfm_time_ms=10.0,
    rater_time_ms=1.5, afm_time_ms=4.25, total_time_ms=16.0, mode=ActionChunk.MODE_ASYNCVLA)
chunk.header.stamp = Time(sec=5, nanosec=250)

event = SafetyEvent(source_node='safety_filter', kind=SafetyEvent.KIND_JOINT_LIMIT,
                    detail='elbow 3.2 rad > 3.1 rad', refusal_count=3, estop_latched=True)

report = {'package_file': asyncvla_ros.__file__, 'serialized': {}}
for msg in (features, chunk, event):
    data = serialize_message(msg)
    back = deserialize_message(data, type(msg))
    if back != msg:
        sys.exit(f'{type(msg).__name__} changed in the round trip:\n{msg}\n!=\n{back}')
    report['serialized'][type(msg).__name__] = data.hex()
# Spot checks that say what went wrong more plainly than the equality above would.
back = deserialize_message(serialize_message(features), SemanticFeatures)
assert bytes(back.tensors[0].data) == bytes(range(24)), back.tensors[0].data
assert list(back.tensors[0].shape) == [1, 2, 3, 1]
assert back.transport == 'inline' and SemanticFeatures.TRANSPORT_IN_PROCESS == 'in_process'
back = deserialize_message(serialize_message(chunk), ActionChunk)
assert list(back.regenerated) == [False, True, False] and list(back.actions)[5] == -1.5
print(json.dumps(report))
'''


def _run_in_install_space(install: pathlib.Path, code: str) -> str:
    """Runs Python code with `source <install>/setup.bash` done first; returns its stdout."""
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)  # only what the install space (and the interpreter) provides
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    shell = f'source "{install}/setup.bash" && exec "{sys.executable}" -c "$ROUND_TRIP_CODE"'
    env['ROUND_TRIP_CODE'] = code
    # cwd outside the repository: run from its root, the source tree's asyncvla_ros (which has no
    # generated msg/) would come first on sys.path and shadow the install space's.
    result = subprocess.run(['bash', '-c', shell], cwd=install.parent, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f'in the install space:\n{result.stdout}\n{result.stderr}'
    return result.stdout


@pytest.fixture(scope='module')
def round_trip(install_space):
    out = _run_in_install_space(install_space, _ROUND_TRIP_SCRIPT)
    return json.loads(out.strip().splitlines()[-1])


def test_messages_import_from_install_space_and_round_trip(install_space, round_trip):
    assert pathlib.Path(round_trip['package_file']).is_relative_to(install_space), (
        f'asyncvla_ros came from {round_trip["package_file"]}, not from the install space')
    assert set(round_trip['serialized']) == {'SemanticFeatures', 'ActionChunk', 'SafetyEvent'}


def test_rosbags_decodes_what_rclpy_serialized(round_trip):
    """The recorder writes bags with rosbags: it must read our types exactly as rclpy writes them."""
    rosbags_typesys = pytest.importorskip('rosbags.typesys', reason='rosbags is not installed')
    typestore = rosbags_typesys.get_typestore(rosbags_typesys.Stores.LATEST)
    types = {}
    for name in ('TensorBlob', 'SemanticFeatures', 'ActionChunk', 'SafetyEvent'):
        text = (REPO / 'msg' / f'{name}.msg').read_text()
        types.update(rosbags_typesys.get_types_from_msg(text, f'{PACKAGE}/msg/{name}'))
    typestore.register(types)

    def decode(name):
        return typestore.deserialize_cdr(bytes.fromhex(round_trip['serialized'][name]),
                                         f'{PACKAGE}/msg/{name}')

    features = decode('SemanticFeatures')
    assert features.seq == 7 and features.header.frame_id == 'wrist_camera'
    assert features.tensors[0].data.tobytes() == bytes(range(24))
    assert features.tensors[1].dtype == 'bfloat16' and features.tensors[1].data.size == 0
    assert (features.state_stamp.sec, features.state_stamp.nanosec) == (5, 250)
    chunk = decode('ActionChunk')
    assert chunk.joint_names == ['shoulder', 'elbow'] and chunk.chunk_id == 42
    assert chunk.actions.tolist() == [0.0, 0.5, -0.25, 1.0, 0.125, -1.5]
    assert chunk.regenerated.tolist() == [False, True, False]
    assert chunk.mode == 'asyncvla' and chunk.semantic_age_s == 0.75
    event = decode('SafetyEvent')
    assert (event.kind, event.refusal_count, event.estop_latched) == ('joint_limit', 3, True)


def test_node_executables_installed_for_ros2_run(install_space):
    lib_dir = install_space / PACKAGE / 'lib' / PACKAGE
    installed = sorted(p.name for p in lib_dir.iterdir())
    assert installed == sorted(EXPECTED_NODES), f'{lib_dir} holds {installed}'
    for name, module in EXPECTED_NODES.items():
        launcher = lib_dir / name
        assert os.access(launcher, os.X_OK), f'{launcher} is not executable'
        text = launcher.read_text()
        interpreter = text.splitlines()[0].removeprefix('#!')
        assert os.access(interpreter, os.X_OK), f'{launcher}: interpreter {interpreter} missing'
        assert f'from {module} import main' in text, text


def test_launch_and_config_installed_when_present(install_space):
    share = install_space / PACKAGE / 'share' / PACKAGE
    assert (share / 'package.xml').is_file()
    for folder in ('launch', 'config'):
        source = REPO / folder
        if not source.is_dir():
            continue
        expected = sorted(str(p.relative_to(source)) for p in source.rglob('*')
                          if p.is_file() and '__pycache__' not in p.parts)
        got = sorted(str(p.relative_to(share / folder)) for p in (share / folder).rglob('*')
                     if p.is_file())
        assert got == expected, f'{folder}/ installed incompletely'
