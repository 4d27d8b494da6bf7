"""Every RPC and every storage call is traced and measured."""

from __future__ import annotations

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chatconnect.runtime import telemetry
from tests.conftest import Server
from tests.polling import eventually

_spans = InMemorySpanExporter()
_metrics = InMemoryMetricReader()


def _install_providers() -> None:
    # Global providers can be installed once per process: this test owns them, and installs
    # them only when it runs so that the rest of the suite records nothing.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_spans))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[_metrics]))
    telemetry.observe()


async def test_rpcs_and_storage_calls_produce_spans_and_metrics(server: Server, clients) -> None:
    _install_providers()
    try:
        await _check_spans_and_metrics(server, clients)
    finally:
        _spans.shutdown()  # later tests export nothing


async def _check_spans_and_metrics(server: Server, clients) -> None:
    alice, bob = await server.register(), await server.register()
    a = await clients(alice)
    await a.send_text(bob.user_id, "traced")

    spans = _spans.get_finished_spans()
    by_name = {s.name: s for s in spans}
    assert "UsersService/StartVerification" in by_name
    assert "UsersService/CompleteRegistration" in by_name
    assert "KeysService/GetPreKeyBundles" in by_name
    registrations = {
        s.context.span_id for s in spans if s.name == "UsersService/CompleteRegistration"
    }
    storage = [s for s in spans if s.name == "sqlite register"]
    assert len(storage) == 2, "each registration's storage call is traced"
    for span in storage:
        assert span.parent is not None
        assert span.parent.span_id in registrations
        assert span.attributes["db.system"] == "sqlite"

    # A stream's span ends with the stream; what happened on it is traced on its own.
    await a.close()

    async def stream_span() -> list[ReadableSpan]:
        return [s for s in _spans.get_finished_spans() if s.name == "GatewayService/Connect"]

    (connect,) = await eventually(stream_span, "the Connect stream's span")
    assert connect.kind == trace.SpanKind.SERVER
    sends = [s for s in _spans.get_finished_spans() if s.start_time > connect.start_time]
    assert all(s.parent is None or s.parent.span_id != connect.context.span_id for s in sends)

    data = _metrics.get_metrics_data()
    names = {
        metric.name
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {"rpc.server.duration", "chatconnect.storage.duration"} <= names
