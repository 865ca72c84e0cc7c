"""Sends log records to Loghound's OTLP/HTTP endpoint with the real
OpenTelemetry Python SDK: Python `logging` through the SDK's
LoggingHandler, a batch processor and the OTLP/HTTP protobuf exporter
with gzip, some records inside a span so they carry trace and span ids.
Prints the ids of that span and whether the last export succeeded, as
one JSON object.

usage: send.py BASE_URL TOKEN COUNT
"""

import json
import logging
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider


class Recording(OTLPLogExporter):
    """The exporter, remembering the result of each export."""

    results = []

    def export(self, batch):
        result = super().export(batch)
        Recording.results.append(result.name)
        return result


def main():
    base_url, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    resource = Resource.create(
        {
            "service.name": "billing",
            "service.version": "2.4.1",
            "host.name": "otel-host-1",
            "deployment.environment": "staging",
        }
    )
    provider = LoggerProvider(resource=resource)
    exporter = Recording(
        endpoint=base_url + "/v1/logs",
        headers={"Authorization": "Bearer " + token},
        compression=Compression.Gzip,
        timeout=30,
    )
    provider.add_log_record_processor(
        BatchLogRecordProcessor(exporter, max_export_batch_size=256)
    )
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    log = logging.getLogger("billing.invoices")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(handler)

    tracer = TracerProvider(resource=resource).get_tracer("billing")
    with tracer.start_as_current_span("charge") as span:
        context = span.get_span_context()
        for n in range(count):
            level = logging.ERROR if n % 10 == 0 else logging.INFO
            log.log(level, "otel-rec %d invoice sent", n, extra={"invoice.id": n, "tenant": "t%d" % (n % 4)})
    log.warning("otel-outside-span")
    provider.shutdown()
    print(
        json.dumps(
            {
                "trace_id": format(context.trace_id, "032x"),
                "span_id": format(context.span_id, "016x"),
                "results": Recording.results,
            }
        )
    )


if __name__ == "__main__":
    main()
