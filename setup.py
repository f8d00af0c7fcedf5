from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
SERVE = ["starlette>=0.37", "uvicorn>=0.29"]
setup(
    name="zhrnn",
    version="0.1.0",
    description="Chinese-first character-level RNN (GRU/LSTM) text generator on PyTorch",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    # The shipped models live in the repository's top-level pretrained/ and install as
    # zhrnn/pretrained, so `pip install .` brings them along (zhrnn/shipped.py finds either).
    packages=[*find_packages(include=["zhrnn", "zhrnn.*"]), "zhrnn.pretrained"],
    package_dir={"zhrnn.pretrained": "pretrained"},
    package_data={"zhrnn.poetry": ["cipai.json", "pingshui.tsv"], "zhrnn.serve": ["page.html"],
                  "zhrnn.pretrained": ["*.pt", "README.md"]},
    python_requires=">=3.10",
    # Any torch from 2.3 on (torch.amp.GradScaler): a user's own CUDA build is kept as it is. On a CPU-only machine
    # install a CPU build first (see README) so pip does not pull the CUDA packages.
    install_requires=["torch>=2.3", "numpy>=1.22", "jieba>=0.42", "opencc-python-reimplemented>=0.1.7", "tqdm>=4.60"],
    # serve: the web page (zhrnn serve); test: also the page's, through httpx and a real browser (selenium
    # drives the system's chromium where one is installed; nothing is downloaded)
    extras_require={"rhyme": ["pypinyin>=0.50"], "serve": SERVE,
                    "test": ["pytest>=7", "hypothesis>=6", "pypinyin>=0.50", *SERVE, "httpx>=0.27", "selenium>=4.10"]},
    entry_points={"console_scripts": ["zhrnn=zhrnn.cli:main"]},
)
