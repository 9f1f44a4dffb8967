"""Container images: one pulumi_docker.Image per service this stack deploys.

Built from services/Dockerfile with the repository root as context and
pushed to <registry>/<project>/<service>:<imageTag>. Deployments use the
pushed digest (repo_digest, `repo@sha256:...`), so a new image rolls the
pods. With `theater-msa:buildImages` false nothing is built and the
Deployments use the already-pushed <registry>/<project>/<service>:<imageTag>.

Second versions (lesson v2Cluster) are tagged per version: movie-service v2
is <registry>/<project>/movie-service:<v2ImageTag>, built from the same
Dockerfile with SERVICE_VERSION=v2; its ref is `refs["movie-service-v2"]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pulumi
import pulumi_docker as docker

from infra.settings import StackConfig
from services import catalog

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "services" / "Dockerfile"


@dataclass(frozen=True)
class ImagesArgs:
    services: Sequence[str]
    cfg: StackConfig
    versions: Sequence[catalog.VersionSpec] = ()


class ServiceImages(pulumi.ComponentResource):
    """`refs[service]` is the image reference a Deployment should use."""

    refs: Mapping[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ImagesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:ServiceImages", name, None, opts)
        cfg = args.cfg
        refs: dict[str, pulumi.Output[str]] = {}
        wanted = [(service, service, cfg.image_tag, {}) for service in args.services]
        wanted += [(v.name, v.spec.name, cfg.v2_image_tag, {"SERVICE_VERSION": v.version}) for v in args.versions]
        for key, service, tag, build_args in wanted:
            repo = cfg.image_repository(service)
            if not cfg.build_images:
                sep = "@" if tag.startswith("sha256:") else ":"
                refs[key] = pulumi.Output.from_input(f"{repo}{sep}{tag}")
                continue
            image = docker.Image(
                key,
                image_name=f"{repo}:{tag}",
                build=docker.DockerBuildArgs(
                    # Absolute paths: the program's working directory differs between
                    # `pulumi up` (infra/) and tests/render (anywhere).
                    context=str(REPO_ROOT),
                    dockerfile=str(DOCKERFILE),
                    platform=cfg.platform,
                    args={"SERVICE_NAME": service, **build_args},
                ),
                registry=docker.RegistryArgs(
                    server=cfg.registry,
                    username=cfg.harbor_username,
                    password=cfg.harbor_password,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            refs[key] = image.repo_digest
        self.refs = refs
        self.register_outputs({"refs": refs})
