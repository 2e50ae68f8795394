"""torchrl_newt: Newt / TD-MPC2 massively multitask world models as TorchRL components."""

from pathlib import Path

from setuptools import find_packages, setup

# Simulator pins that co-install across all ten MMBench domains (see docs/domains.md).
_MUJOCO = ["mujoco==3.3.0", "numpy>=2.0,<2.4"]
EXTRAS = {
    "dmc": ["dm-control==1.0.28", *_MUJOCO],
    "mujoco": ["gymnasium[mujoco]==1.4.0", *_MUJOCO],
    "box2d": ["gymnasium[box2d]==1.4.0"],
    "metaworld": ["metaworld==3.1.1", *_MUJOCO],
    "maniskill": ["mani-skill==3.0.1", "sapien==3.0.3"],
    "ogbench": ["ogbench==1.2.2", *_MUJOCO],
    "robodesk": ["robodesk==1.0.0", "dm-control==1.0.28", *_MUJOCO],
    "atari": ["ale-py==0.12.1", "gymnasium==1.4.0"],
    "arcade": ["pygame-ce>=2.5"],
    "language": ["transformers>=4.45"],
    "vision": ["transformers>=4.45"],
    "slurm": ["submitit>=1.5"],
    "wandb": ["wandb"],
    "video": ["imageio>=2.30", "imageio-ffmpeg>=0.4"],  # evaluate --video (MP4; GIF needs only Pillow)
    "tensorboard": ["tensorboard>=2.14"],  # --logger tensorboard (torchrl's TensorboardLogger)
    "test": ["pytest>=8", "pytest-xdist>=3", "wandb"],
}
EXTRAS["envs"] = sorted({r for k in ("dmc", "mujoco", "box2d", "arcade") for r in EXTRAS[k]})
EXTRAS["all"] = sorted({r for k, v in EXTRAS.items() if k not in ("test", "wandb") for r in v})

setup(
    name="torchrl_newt",
    version="0.1.0",
    description="Massively multitask world models (Newt / TD-MPC2) for continuous control, native to TorchRL",
    long_description=Path(__file__).with_name("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["torchrl_newt", "torchrl_newt.*"]),
    package_data={"torchrl_newt": ["envs/domains/**/*.xml", "envs/domains/**/*.json", "modules/data/*.npz"]},
    install_requires=[
        "torch>=2.11,<2.14",
        "torchrl>=0.14.1,<0.15",
        "tensordict>=0.14.3,<0.15",
        "numpy>=1.26,<2.4",
        "tqdm",
        "matplotlib",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["torchrl-newt-tasks=torchrl_newt.envs.__main__:main"]},
)
