"""The summary printed after a demo run."""
from __future__ import annotations

from ._pipeline import ROLES, DemoResult


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(q / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def transport_name(url: str) -> str:
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        return "embedded in-memory broker"
    return "RabbitMQ (AMQP 0-9-1, TLS)" if scheme == "amqps" else "RabbitMQ (AMQP 0-9-1)"


def safe_url(url: str) -> str:
    """``url`` without a password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, hostpart = rest.rpartition("@")
    return f"{scheme}://{userinfo.split(':', 1)[0]}@{hostpart}"


def format_summary(r: DemoResult, *, compiled: dict[str, bool], loop: str) -> str:
    """A short multi-line summary of ``r``."""
    built = sorted(name for name, on in compiled.items() if on)
    ext = f"yes ({', '.join(built)})" if built and all(compiled.values()) else (
        f"partly ({', '.join(built)})" if built else "no (pure-Python twins)")
    handled = "  ".join(
        f"{role} {sum(r.handled[role])}" + (f" ({'+'.join(map(str, r.handled[role]))})"
                                            if len(r.handled[role]) > 1 else "")
        for role in ROLES)
    wall = r.wall_time or 1e-9
    lat = r.latencies
    dlq = f"{r.dead_letter_count} in {r.dead_letter_queue}"
    if r.dead_letter_reason:
        dlq += f", x-mmate-reason={r.dead_letter_reason}: {r.dead_letter_error}"
    lines = [
        "mmate demo: order pipeline finished",
        f"  transport   {transport_name(r.url)} at {safe_url(r.url)}; event loop {loop}; "
        f"compiled extensions {ext}",
        f"  orders      sent {r.orders_sent}  completed {r.completed}  rejected {r.rejected}",
        f"  dead letter {dlq}",
        f"  handled     {handled}  (total {r.messages_handled} messages)",
        f"  wall time   {r.wall_time:.2f} s",
        f"  rate        {r.messages_handled / wall:,.0f} messages/s  "
        f"{(r.completed + r.rejected) / wall:,.0f} orders/s",
        f"  latency     p50 {percentile(lat, 50) * 1000:.1f} ms  p99 {percentile(lat, 99) * 1000:.1f} ms  "
        f"(PlaceOrder publish -> StockReserved and PaymentCaptured at notifications)",
    ]
    return "\n".join(lines)
