"""Transports between the hub and the feeders' MQTT sessions.

``base`` holds the contract the hub talks to; ``bundled`` runs an amqtt broker inside Home
Assistant's event loop (``broker`` and ``plugins`` are its parts). Nothing here imports Home
Assistant except an HA-MQTT transport, if present.
"""
