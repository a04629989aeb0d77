"""Robot descriptions: lookup errors name the choices; robot_description text points RViz at real mesh files."""

import re
from pathlib import Path

import pytest

from asyncvla_ros.visualization.descriptions import DESCRIPTIONS, description


def test_unknown_description_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid descriptions are"):
        description("ur5")


@pytest.mark.parametrize("name", sorted(DESCRIPTIONS))
def test_robot_description_meshes_are_absolute_existing_files(name):
    try:
        xml = description(name).urdf_xml()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    assert f'name="{description(name).base_frame}"' in xml and f'name="{description(name).ee_frame}"' in xml
    meshes = re.findall(r'filename="([^"]+)"', xml)
    if name == "so101":
        assert len(meshes) > 10
    for uri in meshes:
        assert uri.startswith("file:///"), uri
        assert Path(uri[len("file://"):]).is_file(), uri
