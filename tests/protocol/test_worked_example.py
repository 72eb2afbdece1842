"""The byte-exact vectors of the protocol specification's worked example (§13)."""

import json

from custom_components.petnet_feeder.protocol.commands import feed, utc_offset
from custom_components.petnet_feeder.protocol.firmware import uses_new_schedule_api
from custom_components.petnet_feeder.protocol.ids import device_pri, hid_from_uid
from custom_components.petnet_feeder.protocol.messages import (
    SOURCE_REMOTE,
    SOURCE_SCHEDULE,
    ApiRequest,
    FeedResult,
    Heartbeat,
    SensorReading,
    api_ack,
    command_status_from_uri,
    parse_api_request,
    parse_telemetry,
)
from custom_components.petnet_feeder.protocol.schedule import (
    ScheduleEntry,
    schedule_commands,
    schedule_events,
    schedule_fingerprint,
)
from custom_components.petnet_feeder.protocol.topics import (
    InboundKind,
    command_topic,
    gateway_from_username,
    may_subscribe,
    parse_inbound_topic,
)

GW = "488533283e3f06ca4ae929fd01f50a9259dd393f"
DEV = "5238b0c4ceb91b35119887f44f29cb489fcf044a"
MEALS = [
    ScheduleEntry(meal_id=2, time_s=66600, portion=0.25, active=True),  # Dinner
    ScheduleEntry(meal_id=1, time_s=25200, portion=0.25, active=True),  # Breakfast
]
SYNC_HIDS = [
    "kemubcrdlsbqgbcnnchcrnbsdhuusbss",
    "mbhbrejnerdsjrvfdssugldrwcsbtgpv",
    "rnykosoljhzfwyhcsjqpkxojtcdqnfyk",
    "epnbvcyrszkkwltpszoccipwvcbxwjus",
    "vojwmvlaolftdpbgyjexhmmpcfomrien",
]
STEP_7_COMMANDS = [
    '{"hid": "kemubcrdlsbqgbcnnchcrnbsdhuusbss", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "schedule_clear", "payload": "{}"}}',
    '{"hid": "mbhbrejnerdsjrvfdssugldrwcsbtgpv", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "schedule_mod_start", "payload": "{\\"size\\": 2}"}}',
    '{"hid": "rnykosoljhzfwyhcsjqpkxojtcdqnfyk", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "schedule_add", "payload": "[{\\"index\\": 0, \\"data\\": {\\"active\\": true, \\"automatic\\": true, \\"feeding_id\\": \\"5238b0c4ceb91b35_feed1_7:00AM\\", \\"name\\": \\"FEED0\\", \\"portion\\": 0.25, \\"reminder\\": true, \\"time\\": 25200}}]"}}',
    '{"hid": "epnbvcyrszkkwltpszoccipwvcbxwjus", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "schedule_add", "payload": "[{\\"index\\": 1, \\"data\\": {\\"active\\": true, \\"automatic\\": true, \\"feeding_id\\": \\"5238b0c4ceb91b35_feed2_18:30PM\\", \\"name\\": \\"FEED1\\", \\"portion\\": 0.25, \\"reminder\\": true, \\"time\\": 66600}}]"}}',
    '{"hid": "vojwmvlaolftdpbgyjexhmmpcfomrien", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "schedule_mod_end", "payload": "{}"}}',
]


def test_identities() -> None:
    assert hid_from_uid("smartfeeder-795ae773737d") == GW
    assert hid_from_uid("smartfeeder-795ae773737d-prod") == DEV
    assert device_pri(DEV) == f"arw:krn:dev:{DEV}"


def test_step_4_session() -> None:
    assert gateway_from_username(f"/pegasus:{GW}") == GW
    assert may_subscribe(GW, f"krs/cmd/stg/{GW}")
    assert may_subscribe(GW, f"krs/api/stg/{GW}")
    assert not may_subscribe(GW, f"krs/cmd/stg/{DEV}")


def test_step_5_heartbeat() -> None:
    assert parse_inbound_topic(f"krs.tel.gts.{GW}") == (InboundKind.TELEMETRY, GW)
    payload = b'{"_|deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "s|msg_type": "hb"}'
    assert parse_telemetry(payload) == Heartbeat(device_hid=DEV)


def test_step_6_sensor() -> None:
    payload = (
        b'{"_|deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "s|msg_type": "sensor", '
        b'"f|voltage": 4500, "i|usb": 1, "i|chg": 0, "i|ir": 0, "i|rssi": 99}'
    )
    assert parse_telemetry(payload) == SensorReading(
        device_hid=DEV, voltage_v=4.5, usb=True, charging=False, ir=False, rssi=99
    )


def test_step_7_utc_offset() -> None:
    command = utc_offset(DEV, -18000, command_hid="tuvxboyvzrmmmmdpumbgcgofdktbdase")
    assert command.payload.decode() == (
        '{"hid": "tuvxboyvzrmmmmdpumbgcgofdktbdase", "name": "SendCommand", "encrypted": false, '
        '"parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", '
        '"command": "utc_offset", "payload": "{\\"utc_offset\\": -18000}"}}'
    )


def test_step_7_schedule_sync() -> None:
    assert uses_new_schedule_api("2.8.0")
    commands = schedule_commands(DEV, MEALS, new_api=True, command_hids=SYNC_HIDS)
    assert [command.payload.decode() for command in commands] == STEP_7_COMMANDS
    assert [command.hid for command in commands] == SYNC_HIDS
    assert command_topic(GW) == f"krs/cmd/stg/{GW}"


def test_step_7_legacy_and_upstream_alternatives() -> None:
    [legacy] = schedule_commands(DEV, MEALS, new_api=False)
    events = schedule_events(DEV, MEALS)
    assert json.loads(json.loads(legacy.payload)["parameters"]["payload"]) == events
    assert [event["name"] for event in events] == ["FEED0", "FEED1"]


def test_step_7_command_report_and_ack() -> None:
    payload = (
        b'{"requestId": "GS-1717243500", "eventName": "GatewayToServer_ApiRequest", '
        b'"encrypted": false, "parameters": {"uri": '
        b'"/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received", "method": "PUT"}}'
    )
    assert parse_inbound_topic(f"krs.api.gts.{GW}") == (InboundKind.API_REQUEST, GW)
    request = parse_api_request(payload)
    assert request == ApiRequest(
        request_id="GS-1717243500",
        uri="/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received",
        method="PUT",
    )
    assert api_ack(request.request_id) == (
        b'{"requestId": "GS-1717243500", "eventName": "GatewayToServer_ApiRequest", '
        b'"encrypted": false, "parameters": {"status": "OK"}}'
    )
    assert command_status_from_uri(request.uri) == (
        "kemubcrdlsbqgbcnnchcrnbsdhuusbss",
        "received",
    )


def test_step_7_fingerprint() -> None:
    fingerprint = schedule_fingerprint(DEV, MEALS)
    assert len(fingerprint) == 32
    assert fingerprint == schedule_fingerprint(DEV, list(reversed(MEALS)))


def test_step_8_feed_now() -> None:
    command = feed(DEV, 1 / 16, command_hid="riwnlvmhecfehvhapsfijaenrltskewq")
    assert command.payload.decode() == (
        '{"hid": "riwnlvmhecfehvhapsfijaenrltskewq", "name": "SendCommand", "encrypted": false, '
        '"parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", '
        '"command": "feed", "payload": "{\\"portion\\": 0.0625}"}}'
    )
    assert command.name == "feed"


def test_step_9_feed_results() -> None:
    payload = (
        b'{"_|deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "s|msg_type": "feed_result", '
        b'"i|stime": 1717251300, "i|etime": 1717251304, "i|pour": 1, "i|full": 0, "f|e_g": 8.0, '
        b'"f|a_g": 7.6, "f|h_s": 62, "f|h_e": 61, "i|src": 4, "b|fail": false, "b|trip": false, '
        b'"b|lrg": false, "b|vol": false, "b|bowl": true, "s|rid": "E0000001", "s|err": ""}'
    )
    result = parse_telemetry(payload)
    assert isinstance(result, FeedResult)
    assert result.start_ms == 1717251300000
    assert result.end_ms == 1717251304000
    assert result.source == SOURCE_REMOTE
    assert result.grams_expected == 8.0
    assert result.grams_actual == 7.6
    assert result.fail is False
    assert result.recipe_id == "E0000001"
    # Breakfast's target is 1717243200000 +- 300000 ms: this remote snack is outside it.
    assert abs(result.start_ms - 1717243200000) > 300_000

    breakfast = parse_telemetry(
        b'{"_|deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "s|msg_type": "feed_result", '
        b'"i|stime": 1717243203, "i|src": 6, "f|e_g": 32.0, "b|fail": false}'
    )
    assert isinstance(breakfast, FeedResult)
    assert breakfast.source == SOURCE_SCHEDULE
    assert breakfast.start_ms == 1717243203000
    assert abs(breakfast.start_ms - 1717243200000) == 3000
    assert breakfast.grams_expected == 32.0
    assert breakfast.fail is False
    assert breakfast.end_ms is None
