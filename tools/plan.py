"""Offline plan: the stack's program under mocks, its fleet and address arithmetic, and the policy pack.

``make plan STACK=prod`` (``python -m tools.plan --stack prod``) evaluates the Pulumi program for a
stack with no CLI and no credentials, prints the resource tree, the per-variant fleet and quota
figures, the per-subnet address figures, and the result of every CrossGuard policy, computed by
the very policy objects ``pulumi preview --policy-pack policies`` runs.

Exit codes: 0 when no mandatory policy is violated, 1 when one is, 2 for a configuration error
(the stack's or the pack config's), printed with the setting and the fix and never a traceback.
The stack is read only through the stack core (``stackcore``): its layering, its key and YAML
checks, its quota settings and Service Quotas reader. The output is in a stable order: the same
input gives byte-identical output.

``--write-policy-config PATH`` writes the policy-pack config a stack's preview needs (the quotas
the stack declares) and exits; the pull-request workflow passes it to ``--policy-pack-config``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from lib.graph import RecordedResource, ResourceGraph
from policies import appautoscaling, ec2, sagemaker, topology
from policies.runner import PackReport, policy_config, policy_resources, run_pack
from policies.settings import ENDPOINT_INSTANCE_QUOTAS, TOTAL_INSTANCE_QUOTA, PolicyConfigError
from stackcore import quotas as stack_quotas
from stackcore.fleet import QuotaTable, UpdateMode
from stackcore.layering import parse_set_arguments, read_stack_values
from stackcore.problems import StackConfigError
from stackcore.settings import parse_max_concurrency, parse_quotas
from tools.simulate import whatif

PROJECT_DIR = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_VIOLATION, EXIT_CONFIG = 0, 1, 2


# The stack's policy-pack config.


def stack_pack_config(
    stack: str, project_dir: Path = PROJECT_DIR, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The pack config for a stack: the quotas it declares (overrides, stack file, Pulumi.yaml's
    defaults), read through the stack core. Raises StackConfigError for a stack file it refuses."""
    values = read_stack_values(project_dir, stack, overrides)
    declared = parse_quotas(values.values, declarations=values.declarations, project=values.project)
    quotas = {
        ENDPOINT_INSTANCE_QUOTAS: dict(sorted(declared.per_instance_type.items())),
        TOTAL_INSTANCE_QUOTA: declared.total_instances,
    }
    pack_config: dict[str, Any] = {sagemaker.INSTANCE_QUOTA: quotas}
    # The measured concurrency one instance holds (the stack key and the pack key agree); 0, the
    # default, means not measured, which the policy's own default already says.
    measured = parse_max_concurrency(values.values, declarations=values.declarations, project=values.project)
    if measured > 0:
        entry = {appautoscaling.MAX_CONCURRENCY_PER_INSTANCE: measured}
        pack_config[appautoscaling.CONCURRENCY_CAPACITY] = entry
    return pack_config


def merge_pack_config(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` wins; object entries merge key by key, so a level can be set without the quotas."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        elif isinstance(value, str) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], "enforcementLevel": value}
        else:
            merged[key] = value
    return merged


# Live quotas (where credentials exist): the account's real table beats the declared one.


def with_live_quotas(pack_config: Mapping[str, Any], client: Any, out: TextIO) -> dict[str, Any]:
    """The pack config with the account's quotas in place of the declared ones (each change printed).

    A type the account does not list keeps its declared quota."""
    per_type, total = stack_quotas.read_live_quotas(client)
    declared = dict(pack_config.get(sagemaker.INSTANCE_QUOTA, {}))
    table = dict(declared.get(ENDPOINT_INSTANCE_QUOTAS, {}))
    suffix = stack_quotas.ENDPOINT_USAGE_SUFFIX
    for instance_type, value in sorted(per_type.items()):
        if table.get(instance_type) not in (None, value):
            out.write(
                f"live quota '{instance_type}{suffix}' is {value}, the stack declares "
                f"{table[instance_type]}: using {value}\n"
            )
    table.update(per_type)
    declared[ENDPOINT_INSTANCE_QUOTAS] = table
    if total is not None:
        if declared.get(TOTAL_INSTANCE_QUOTA) not in (None, total):
            out.write(
                f"live quota '{stack_quotas.TOTAL_QUOTA_NAME}' is {total}, the stack declares "
                f"{declared[TOTAL_INSTANCE_QUOTA]}: using {total}\n"
            )
        declared[TOTAL_INSTANCE_QUOTA] = total
    return {**pack_config, sagemaker.INSTANCE_QUOTA: declared}


def _service_quotas_client(region: str | None) -> Any:
    import boto3  # noqa: PLC0415 - only a plan with --live-quotas talks to AWS

    return boto3.client("service-quotas", region_name=region)


def _stack_region(stack: str, project_dir: Path, overrides: Mapping[str, Any]) -> str | None:
    return read_stack_values(project_dir, stack, overrides).region or None


# Printing.


def print_tree(graph: ResourceGraph, out: TextIO) -> None:
    # Children in the order of the (sorted) graph: see stable_order.
    urns = {r.urn for r in graph.resources}
    children: dict[str | None, list[RecordedResource]] = {}
    for resource in graph.resources:
        parent = resource.parent if resource.parent in urns else None
        children.setdefault(parent, []).append(resource)

    def walk(parent: str | None, depth: int) -> None:
        for resource in children.get(parent, []):
            out.write(f"  {'  ' * depth}{resource.type}  {resource.name}\n")
            walk(resource.urn, depth + 1)

    out.write(f"Resources ({len(graph.resources)}):\n")
    walk(None, 0)


def print_fleet(graph: ResourceGraph, pack_config: Mapping[str, Any], out: TextIO) -> None:
    resources = policy_resources(graph)
    quota_settings = policy_config(sagemaker.instance_quota, pack_config)
    quotas = QuotaTable(
        per_instance_type=quota_settings[ENDPOINT_INSTANCE_QUOTAS],
        total_instances=quota_settings[TOTAL_INSTANCE_QUOTA],
    )
    found = topology.endpoints(resources)
    out.write("\nFleet (peak = instances running at once during an update at the autoscaling maximum):\n")
    total = 0
    for endpoint in found:
        for variant in endpoint.variants:
            fleet = next(
                (f for f in endpoint.fleets() if f.resource_name == f"{endpoint.name}/{variant.name}"), None
            )
            counts = (
                f"min {_n(variant.min_capacity)} / initial {_n(variant.initial_count)} / max "
                f"{_n(variant.max_instances)}"
            )
            if fleet is None:
                kind = "serverless" if variant.serverless else "unknown until the update"
                out.write(f"  {endpoint.name}/{variant.name}: {variant.instance_type or kind}, {counts}\n")
                continue
            total += fleet.peak
            quota = quotas.for_type(fleet.instance_type)
            update = fleet.update_mode.value
            if fleet.update_mode is UpdateMode.ROLLING:
                update += f" ({fleet.rolling_batch_percent}% batch)"
            out.write(
                f"  {endpoint.name}/{variant.name}: {fleet.instance_type}, {counts}, update {update}, peak "
                f"{fleet.peak}, quota '{fleet.instance_type} for endpoint usage' {fleet.peak}/{quota}\n"
            )
            if endpoint.rolling_batch_note:
                out.write(f"    note: {endpoint.rolling_batch_note}\n")
    out.write(
        f"  all endpoints: peak {total}, quota 'Number of instances across active endpoints' "
        f"{total}/{quotas.total_instances}\n"
    )

    out.write("\nSubnets (2 addresses per peak instance + other ENIs + headroom + 5 reserved by AWS):\n")
    demands = sorted(
        ec2.subnet_demands(resources, policy_config(ec2.subnet_addresses, pack_config)),
        key=lambda d: d.subnet.resource.name,
    )
    if not demands:
        out.write("  no endpoint subnets in this stack\n")
    for demand in demands:
        subnet = demand.subnet
        verdict = {True: "fits", False: "TOO SMALL", None: "size unknown until the update"}[demand.fits]
        out.write(
            f"  {subnet.resource.name}: {subnet.cidr_block or '?'} in {subnet.availability_zone or '?'}, "
            f"size {_n(subnet.size)}, {demand.instances} peak instance(s), {subnet.other_enis} other ENI(s), "
            f"{demand.headroom_percent}% headroom -> needs {demand.addresses_needed}: {verdict}\n"
        )


def print_policies(report: PackReport, out: TextIO) -> None:
    out.write(f"\nPolicies ({len(report.results)}):\n")
    for result in report.results:
        out.write(f"  [{result.status}] {result.name} ({result.level.value})\n")
        for message in sorted(v.message for v in result.violations):
            out.write(f"      - {message}\n")
        for reason in result.not_applicable:
            out.write(f"      ({reason})\n")
        for reason in result.cannot_judge:
            out.write(f"      (cannot judge before the update: {reason})\n")
    failed = len(report.mandatory_violations)
    advisory = len(report.violations) - failed
    verdict = "PASSED" if report.passed else "FAILED"
    out.write(f"\n{verdict}: {failed} mandatory violation(s), {advisory} advisory, stack '{report.stack}'\n")


def stable_order(graph: ResourceGraph) -> ResourceGraph:
    """The graph with its resources sorted by name, type and URN. The engine registers resources
    as their inputs resolve, in an order that changes from run to run; everything the plan prints
    (the tree, the fleets, the subnets, the violations) follows this order instead."""
    return replace(graph, resources=tuple(sorted(graph.resources, key=lambda r: (r.name, r.type, r.urn))))


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


# Entry point.


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan", description="Offline plan of a stack under mocks, with the policy pack."
    )
    parser.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--policy-config", type=Path, help="extra pack config JSON, merged over the stack's quotas"
    )
    parser.add_argument(
        "--write-policy-config",
        type=Path,
        metavar="PATH",
        help="write the stack's pack config JSON to PATH and exit",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stack setting for this plan (JSON value, else a string), e.g. --set maxInstances=20",
    )
    parser.add_argument(
        "--live-quotas",
        action="store_true",
        help="use the account's quotas from Service Quotas (needs credentials), not the declared ones",
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = _parse(argv)
    try:
        overrides = parse_set_arguments(args.overrides)
        pack_config = stack_pack_config(args.stack, args.project_dir, overrides)
        if args.live_quotas:
            client = _service_quotas_client(_stack_region(args.stack, args.project_dir, overrides))
            pack_config = with_live_quotas(pack_config, client, out)
        if args.write_policy_config is not None:
            args.write_policy_config.parent.mkdir(parents=True, exist_ok=True)
            args.write_policy_config.write_text(json.dumps(pack_config, indent=2, sort_keys=True) + "\n")
            out.write(f"wrote the policy-pack config of stack '{args.stack}' to {args.write_policy_config}\n")
            return EXIT_OK
        if args.policy_config is not None:
            try:
                extra = json.loads(args.policy_config.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise PolicyConfigError(f"cannot read {args.policy_config}: {error}") from error
            if not isinstance(extra, dict):
                raise PolicyConfigError(
                    f"{args.policy_config} must hold a JSON object (policy name -> settings)"
                )
            pack_config = merge_pack_config(pack_config, extra)
        graph = stable_order(_evaluate(args.stack, args.project_dir, overrides))
        report = run_pack(graph, pack_config)
    except PolicyConfigError as error:
        out.write(f"policy-pack configuration error: {error}\n")
        return EXIT_CONFIG
    except (BotoCoreError, ClientError) as error:
        out.write(
            f"cannot read the live quotas: {error}; run without --live-quotas to use the declared ones\n"
        )
        return EXIT_CONFIG
    except StackConfigError as error:
        # The stack core's error, raised here or by the program's config.py (a subclass).
        out.write(f"stack '{args.stack}' configuration error: {error}\n")
        return EXIT_CONFIG
    out.write(f"Offline plan of stack '{args.stack}' (program evaluated under mocks, no cloud calls)\n\n")
    print_tree(graph, out)
    print_fleet(graph, pack_config, out)
    print_policies(report, out)
    out.write(whatif.report(args.stack, args.project_dir, overrides))
    return EXIT_OK if report.passed else EXIT_VIOLATION


def _evaluate(stack: str, project_dir: Path, overrides: Mapping[str, Any]) -> ResourceGraph:
    from lib.evaluate import evaluate_stack  # noqa: PLC0415 - pulumi_aws loads only when a plan runs

    return evaluate_stack(stack, project_dir=project_dir, config_overrides=overrides)


if __name__ == "__main__":
    sys.exit(main())
