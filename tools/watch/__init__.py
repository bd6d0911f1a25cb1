"""Watch a deployed endpoint while it is load-tested: ``python -m tools.watch`` (``make watch``).

Every ``--every`` seconds it reads the endpoint's status and current/desired instance counts
(DescribeEndpoint), the free addresses of each of its subnets (DescribeSubnets
``AvailableIpAddressCount``) and its CloudWatch metrics (CPU, memory, invocations per instance,
model latency, 5XX errors), prints one line, and keeps a timeline: JSON after every reading, a PNG
of the seed's panels at the end. What the seed's author read by hand every 15 minutes during a
two-hour test, to see an instance lost and the addresses it took.

Modules: ``watcher`` (one reading, from boto3 clients), ``timeline`` (JSON and PNG), ``cli``.
"""
