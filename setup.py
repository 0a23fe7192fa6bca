"""rollout as an ament_python ROS 2 package and a plain pip package.

`nodes/` installs as `rollout.nodes` and `msgs/` as the package's own copy of the rollout_msgs
definitions, so `pip install .` works without ROS 2; the data files are what `colcon build`
needs for `ros2 run rollout <node>` and `ros2 launch rollout <file>`.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rollout"
NODES = ["sim", "recorder", "replay", "viser_bridge", "foxglove_bridge", "video_encoder", "to_npz", "from_npz"]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Record, replay, inspect and export reinforcement-learning policy rollouts",
    python_requires=">=3.10",
    # every subpackage of rollout/, plus nodes/ and msgs/ mapped into it
    packages=[
        *find_packages(include=["rollout", "rollout.*"]),
        "rollout.nodes",
        "rollout.interfaces.rollout_msgs",
    ],
    package_dir={"rollout.nodes": "nodes", "rollout.interfaces.rollout_msgs": "msgs"},
    package_data={
        "rollout": ["interfaces/*/msg/*.msg", "interfaces/*/srv/*.srv", "data/*.pt2"],
        "rollout.interfaces.rollout_msgs": ["msg/*.msg", "srv/*.srv"],
    },
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
    ],
    install_requires=[
        "numpy>=1.26",
        "torch>=2.13,<3",  # the .pt2 loader relies on 2.13's export internals to refuse pickles
        "eclipse-zenoh>=1.4,<2",
        "zstandard>=0.22",
        "lz4>=4.3",
        "viser>=1.0,<2",
        "foxglove-sdk>=0.30,<0.31",  # the foxglove_bridge node's WebSocket server (its API still moves between minor versions)
        "trimesh>=4.0",
        "imageio-ffmpeg>=0.5",
        "pillow>=10.1",
        "mujoco>=3.3",
        "gymnasium>=1.1",
        "tqdm>=4.66",
        "pyyaml>=6.0",
    ],
    extras_require={
        "test": ["pytest>=8", "mcap>=1.2", "imageio>=2.34", "rosbags>=0.10", "yourdfpy>=0.0.56", "playwright>=1.40", "mcap-ros2-support>=0.5"],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [f"{n} = rollout.nodes.{n}:main" for n in NODES] + ["rollout = rollout.cli:main"],
    },
)
