"""A colcon workspace as a ROS 2 user has it: this checkout as `src/rollout`, plus the standard
interface packages that have no Jazzy wheel (tf2_msgs, rosbag2_interfaces), made from the
definitions our codec ships (rollout/interfaces/<pkg>), which are the upstream fields.

    python tests/ros2/workspace.py WS        # then: cd WS && colcon build --base-paths src src/rollout/msgs
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
NO_WHEEL = {"tf2_msgs": ["geometry_msgs", "builtin_interfaces"], "rosbag2_interfaces": ["builtin_interfaces"]}

PACKAGE_XML = """<?xml version="1.0"?>
<package format="3">
  <name>{name}</name>
  <version>0.0.0</version>
  <description>{name} from its standard definitions, for testing rollout under ROS 2</description>
  <maintainer email="rollout@example.com">rollout maintainers</maintainer>
  <license>Apache-2.0</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
{depends}
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
"""

CMAKELISTS = """cmake_minimum_required(VERSION 3.8)
project({name})
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
{finds}
rosidl_generate_interfaces(${{PROJECT_NAME}} {files} DEPENDENCIES {deps})
ament_export_dependencies(rosidl_default_runtime)
ament_package()
"""


def interface_package(dest: Path, name: str, deps: list[str]) -> None:
    source = CHECKOUT / "rollout" / "interfaces" / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*.*") if p.suffix in (".msg", ".srv"))
    (dest / "package.xml").write_text(
        PACKAGE_XML.format(name=name, depends="\n".join(f"  <depend>{d}</depend>" for d in deps))
    )
    (dest / "CMakeLists.txt").write_text(
        CMAKELISTS.format(
            name=name,
            finds="\n".join(f"find_package({d} REQUIRED)" for d in deps),
            files=" ".join(f'"{f}"' for f in files),
            deps=" ".join(deps),
        )
    )


def make_workspace(ws: Path) -> Path:
    src = ws / "src"
    src.mkdir(parents=True, exist_ok=True)
    link = src / "rollout"
    if not link.exists():
        link.symlink_to(CHECKOUT, target_is_directory=True)
    for name, deps in NO_WHEEL.items():
        interface_package(src / "standard_interfaces" / name, name, deps)
    return ws


if __name__ == "__main__":
    make_workspace(Path(sys.argv[1]))
