"""``make package``: the ``prod`` stage as SAM/CloudFormation and as Terraform, ready to deploy.

    python -m deploy.package [--stage prod] [--out build/package]

writes ``OUT/sam/{sam.json,deployment.zip}`` and ``OUT/terraform/{chalice.tf.json,deployment.zip}``:

* ``chalice package`` builds both; ``deploy.gateway_responses`` completes the
  API definition of each with our gateway responses and an ANY method per path;
* ``deploy.sam`` completes the SAM template for production (VPC, log, WAF and
  domain parameters, access logs, throttling), ``deploy.terraform_production``
  the Terraform configuration alike;
* ``deploy.terraform`` makes the Terraform configuration fit for current versions;
* ``deploy.artifact_contents`` prunes the zip to what the functions run (one
  declared list, a reason for each entry), then ``deploy.bytecode`` adds
  unchecked-hash bytecode, after checking that this interpreter is the Python
  of the declared Lambda runtime.

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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.config.settings import PROJECT_ROOT
from deploy.artifact_contents import prune_tree
from deploy.bytecode import ArtifactSize, add_bytecode, check_runtime_matches_interpreter
from deploy.sam import for_production as sam_for_production
from deploy.terraform import modernize
from deploy.terraform_production import for_production as terraform_for_production

DEFAULT_OUT = PROJECT_ROOT / "build" / "package"
DEFAULT_STAGE = "prod"
SAM_TEMPLATE = "sam.json"
TERRAFORM_CONFIG = "chalice.tf.json"
DEPLOYMENT_ZIP = "deployment.zip"


@dataclass(frozen=True)
class PackageOutput:
    sam_dir: Path
    terraform_dir: Path
    size: ArtifactSize

    @property
    def sam_template(self) -> Path:
        return self.sam_dir / SAM_TEMPLATE

    @property
    def terraform_config(self) -> Path:
        return self.terraform_dir / TERRAFORM_CONFIG

    @property
    def deployment_zip(self) -> Path:
        return self.sam_dir / DEPLOYMENT_ZIP


def build_package(
    out: Path = DEFAULT_OUT, stage: str = DEFAULT_STAGE, *, finish_artifact: bool = True
) -> PackageOutput:
    """Build both outputs into ``out``. Raises ArtifactError, CalledProcessError.

    ``finish_artifact=False`` leaves the zip as chalice made it (no pruning, no bytecode): for
    ``make scan``, which reads the templates only.

    Only the generated files are replaced: a Terraform working directory kept in
    ``out/terraform`` (state, ``.terraform/``, a backend file) survives a rebuild.
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".build-") as staging_name:
        staging = Path(staging_name)
        sam_dir, terraform_dir = staging / "sam", staging / "terraform"
        _chalice_package(stage, sam_dir)
        _chalice_package(stage, terraform_dir, "--pkg-format", "terraform")
        sam_template = sam_dir / SAM_TEMPLATE
        sam_template.write_text(
            json.dumps(sam_for_production(json.loads(sam_template.read_text())), indent=2)
        )

        for function in _lambda_functions(sam_dir / SAM_TEMPLATE):
            check_runtime_matches_interpreter(function["Properties"]["Runtime"])
        config = terraform_dir / TERRAFORM_CONFIG
        config.write_text(
            json.dumps(terraform_for_production(modernize(json.loads(config.read_text()))), indent=2)
        )

        if finish_artifact:
            size = _finish_artifacts(sam_dir, terraform_dir)
        else:
            zipped = (sam_dir / DEPLOYMENT_ZIP).stat().st_size
            size = ArtifactSize(zipped_before=zipped, zipped=zipped, unzipped=0, compiled_modules=0)

        for kind, generated in (("sam", SAM_TEMPLATE), ("terraform", TERRAFORM_CONFIG)):
            (out / kind).mkdir(exist_ok=True)
            for name in (generated, DEPLOYMENT_ZIP):
                os.replace(staging / kind / name, out / kind / name)
    return PackageOutput(out / "sam", out / "terraform", size)


def _finish_artifacts(sam_dir: Path, terraform_dir: Path) -> ArtifactSize:
    same_zip = _sha256(sam_dir / DEPLOYMENT_ZIP) == _sha256(terraform_dir / DEPLOYMENT_ZIP)
    size = add_bytecode(sam_dir / DEPLOYMENT_ZIP, prune=prune_tree)
    if same_zip:  # chalice reused its cached build: compile once
        shutil.copyfile(sam_dir / DEPLOYMENT_ZIP, terraform_dir / DEPLOYMENT_ZIP)
    else:
        add_bytecode(terraform_dir / DEPLOYMENT_ZIP, prune=prune_tree)
    return size


def _chalice_package(stage: str, out: Path, *options: str) -> None:
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice asks for one even offline
    command = [sys.executable, "-m", "deploy.chalice_cli", "package", "--stage", stage, *options, str(out)]
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
        f"deployment.zip: {size.zipped / 1e6:.1f} MB zipped, {size.unzipped / 1e6:.1f} MB unzipped,"
        f" {size.compiled_modules} modules compiled (chalice's zip: {size.zipped_before / 1e6:.1f} MB,"
        f" no bytecode; {size.pruned_files} files, {size.pruned_bytes / 1e6:.1f} MB, pruned from it:"
        f" deploy/artifact_contents.py)"
    )


if __name__ == "__main__":
    main()
