"""``make package``: the ``prod`` stage as SAM/CloudFormation and as Terraform, ready to deploy.

    python -m deploy.package [--stage prod] [--out build/package]

writes ``OUT/sam/{sam.json,deployment.zip}`` and ``OUT/terraform/{chalice.tf.json,deployment.zip}``:

* ``chalice package`` builds both (with ``--merge-template`` for SAM, adding our
  gateway responses from ``chalicelib.gateway_responses`` to the API definition);
* ``deploy.terraform`` makes the Terraform configuration fit for current versions;
* ``deploy.bytecode`` adds unchecked-hash bytecode to the zip, after checking
  that this interpreter is the Python of the declared Lambda runtime.

Packaging needs no AWS account; chalice still wants a region, so one is set when missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.bytecode import ArtifactSize, add_bytecode, check_runtime_matches_interpreter
from deploy.gateway_responses import sam_merge_template
from deploy.terraform import modernize

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_ROOT / "build" / "package"
DEFAULT_STAGE = "prod"


@dataclass(frozen=True)
class PackageOutput:
    sam_dir: Path
    terraform_dir: Path
    size: ArtifactSize

    @property
    def sam_template(self) -> Path:
        return self.sam_dir / "sam.json"

    @property
    def terraform_config(self) -> Path:
        return self.terraform_dir / "chalice.tf.json"

    @property
    def deployment_zip(self) -> Path:
        return self.sam_dir / "deployment.zip"


def build_package(out: Path = DEFAULT_OUT, stage: str = DEFAULT_STAGE) -> PackageOutput:
    """Build both outputs into ``out`` (emptied first). Raises ArtifactError, CalledProcessError."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    merge_template = out / "gateway-responses.json"
    merge_template.write_text(json.dumps(sam_merge_template(), indent=2))
    sam_dir, terraform_dir = out / "sam", out / "terraform"
    _chalice_package(stage, sam_dir, "--merge-template", str(merge_template))
    _chalice_package(stage, terraform_dir, "--pkg-format", "terraform")

    for function in _lambda_functions(sam_dir / "sam.json"):
        check_runtime_matches_interpreter(function["Properties"]["Runtime"])
    terraform_config = terraform_dir / "chalice.tf.json"
    terraform_config.write_text(json.dumps(modernize(json.loads(terraform_config.read_text())), indent=2))

    same_zip = _sha256(sam_dir / "deployment.zip") == _sha256(terraform_dir / "deployment.zip")
    size = add_bytecode(sam_dir / "deployment.zip")
    if same_zip:  # chalice reused its cached build: compile once
        shutil.copyfile(sam_dir / "deployment.zip", terraform_dir / "deployment.zip")
    else:
        add_bytecode(terraform_dir / "deployment.zip")
    return PackageOutput(sam_dir, terraform_dir, size)


def _chalice_package(stage: str, out: Path, *options: str) -> None:
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice asks for one even offline
    chalice = Path(sys.executable).parent / "chalice"
    command = [str(chalice), "package", "--stage", stage, *options, str(out)]
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def _lambda_functions(sam_template: Path) -> list[dict[str, Any]]:
    resources = json.loads(sam_template.read_text())["Resources"]
    return [r for r in resources.values() if r["Type"] == "AWS::Serverless::Function"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stage", default=DEFAULT_STAGE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    output = build_package(args.out, args.stage)
    size = output.size
    print(f"SAM:       {output.sam_template}")
    print(f"Terraform: {output.terraform_config}")
    print(
        f"deployment.zip: {size.zipped / 1e6:.1f} MB zipped"
        f" ({size.zipped_before / 1e6:.1f} MB without bytecode), {size.unzipped / 1e6:.1f} MB unzipped,"
        f" {size.compiled_modules} modules compiled"
    )


if __name__ == "__main__":
    main()
