"""Prometheus metrics of this process (scrape every process: /metrics on each).

Counters are per process and monotonic; sum them across processes in Prometheus.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

WS_CONNECTIONS = Gauge(
    "travelsite_ws_connections", "Open WebSocket connections.", registry=REGISTRY
)
WS_CONNECTS = Counter(
    "travelsite_ws_connects_total", "WebSocket connections accepted.", registry=REGISTRY
)
WS_EVENTS_DELIVERED = Counter(
    "travelsite_ws_events_delivered_total",
    "Events forwarded from the channel layer to a socket.",
    registry=REGISTRY,
)
WS_FRAMES_RECEIVED = Counter(
    "travelsite_ws_frames_received_total", "Frames received from clients.", registry=REGISTRY
)
WS_ERRORS = Counter(
    "travelsite_ws_errors_total", "Error frames sent, by code.", ["code"], registry=REGISTRY
)
CHAT_MESSAGES = Counter(
    "travelsite_chat_messages_total", "Chat messages stored.", registry=REGISTRY
)
PRESENCE_CHANGES = Counter(
    "travelsite_presence_changes_total",
    "Presence transitions (online/offline) persisted.",
    registry=REGISTRY,
)
NOTIFICATIONS_CREATED = Counter(
    "travelsite_notifications_created_total", "Notifications created.", registry=REGISTRY
)
NOTIFICATIONS_DELIVERED = Counter(
    "travelsite_notifications_delivered_total",
    "Notification events forwarded to sockets.",
    registry=REGISTRY,
)
NOTIFICATIONS_READ = Counter(
    "travelsite_notifications_read_total", "Notifications marked read.", registry=REGISTRY
)
RATE_LIMIT_HITS = Counter(
    "travelsite_rate_limit_hits_total",
    "Actions refused by a rate limit, by limit.",
    ["limit"],
    registry=REGISTRY,
)
WS_SLOW_CONSUMERS_DROPPED = Counter(
    "travelsite_ws_slow_consumers_dropped_total",
    "Sockets dropped because the client stopped reading (too much unsent data buffered).",
    registry=REGISTRY,
)
LAYER_SEND_FAILURES = Counter(
    "travelsite_layer_send_failures_total",
    "Channel-layer group sends that failed (Redis unavailable, ...).",
    registry=REGISTRY,
)
GC_TIMER_COLLECTIONS = Counter(
    "travelsite_gc_timer_collections_total",
    "Garbage collections run by the event loop's timer, between events (GC_BETWEEN_EVENTS), "
    "by generation.",
    ["generation"],
    registry=REGISTRY,
)
