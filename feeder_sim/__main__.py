r"""Command line: run a fleet of simulated feeders until SIGINT/SIGTERM.

Example::

    python -m feeder_sim --kronos-url https://127.0.0.1:443 --mqtt-host 127.0.0.1 \\
        --mqtt-port 8883 --count 3 --firmware 2.3.2,2.8.0,2.8.0 --heartbeat 30 \\
        --sensor-interval 60 --run-schedule
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .fleet import Fleet


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m feeder_sim", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--kronos-url", required=True, help="e.g. https://127.0.0.1:443"
    )
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, default=8883)
    parser.add_argument(
        "--no-tls", action="store_true", help="plain MQTT instead of MQTT over TLS"
    )
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument(
        "--firmware",
        default="2.8.0",
        help="comma-separated versions, cycled over the feeders",
    )
    parser.add_argument("--heartbeat", type=float, default=30, help="seconds; 0 = none")
    parser.add_argument(
        "--sensor-interval", type=float, default=60, help="seconds; 0 = none"
    )
    parser.add_argument(
        "--run-schedule", action="store_true", help="dispense held meals on time"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for sensor value noise"
    )
    parser.add_argument(
        "--first-index", type=int, default=0, help="index of the first uid"
    )
    parser.add_argument(
        "--tz-offset", type=int, default=0, help="clock offset (s) before utc_offset"
    )
    parser.add_argument(
        "--no-register", action="store_true", help="old firmware: check in only"
    )
    parser.add_argument(
        "--report-status",
        action="store_true",
        help="report command status via MQTT API",
    )
    parser.add_argument(
        "--retry", type=float, default=5, help="seconds between boot/reconnect attempts"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


async def run(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    """Run the fleet until SIGINT/SIGTERM (or until ``stop`` is set)."""
    fleet = Fleet(
        args.count,
        [v.strip() for v in args.firmware.split(",") if v.strip()],
        kronos_url=args.kronos_url,
        mqtt_host=args.mqtt_host,
        mqtt_port=args.mqtt_port,
        mqtt_tls=not args.no_tls,
        register=not args.no_register,
        heartbeat_interval=args.heartbeat or None,
        sensor_interval=args.sensor_interval or None,
        retry_delay=args.retry,
        tz_offset_s=args.tz_offset,
        report_command_status=args.report_status,
        first_index=args.first_index,
        seed=args.seed,
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        for feeder in fleet:
            print(
                f"{feeder.uid} firmware {feeder.firmware} gateway {feeder.gateway_hid}"
            )
        starting = asyncio.create_task(fleet.start(run_schedule=args.run_schedule))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        if (
            starting.done()
            and not starting.cancelled()
            and starting.exception() is None
        ):
            print(f"{len(fleet)} feeder(s) running; Ctrl-C to stop")
            await stopping
        stopping.cancel()
        starting.cancel()
        await asyncio.wait([starting, stopping])
        if not starting.cancelled() and (err := starting.exception()) is not None:
            print(f"start failed: {err!r}")
        await fleet.stop()
        print("stopped")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stdout,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("amqtt").setLevel(logging.ERROR)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:  # a second Ctrl-C after the clean stop
        sys.exit(130)


if __name__ == "__main__":
    main()
