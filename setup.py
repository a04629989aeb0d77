"""pip entry point; the metadata is in setup.cfg and the version in package.xml.

colcon builds this tree as an ament_cmake package (package.xml wins over setup.py), so nothing here
runs during `colcon build`.
"""
import pathlib
import xml.etree.ElementTree as ET

from setuptools import setup


def _package_xml_version() -> str:
    """The one version of the package, as declared in package.xml."""
    root = ET.parse(pathlib.Path(__file__).with_name('package.xml')).getroot()
    version = root.findtext('version')
    if not version:
        raise RuntimeError('package.xml has no <version>: cannot version the Python package')
    return version.strip()


setup(version=_package_xml_version())
