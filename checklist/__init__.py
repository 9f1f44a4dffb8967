"""The seed guide's demo checklist as commands.

    theater doctor   before `pulumi up`: what the clusters still miss (checklist/doctor.py)
    theater verify   after deploying: the checklist item by item, with evidence (checklist/verify.py)
    theater load     during the demo: bounded traffic for Kiali, Jaeger and Prometheus (checklist/load.py)

Shared pieces: report.py (results, the table, --json, exit codes), kube.py
(reading both clusters through the kubeconfig), stack.py (the Pulumi stack
settings, read from Pulumi.<stack>.yaml without the Pulumi CLI), telemetry.py
(Prometheus, Jaeger and Kiali HTTP APIs), harbor.py (the registry's API).
"""
