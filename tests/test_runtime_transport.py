"""The zenoh backend on the wire: what an rmw_zenoh peer sees (behaviour on both backends: test_runtime_backends.py)."""

from __future__ import annotations

import struct
import time

import zenoh

from rollout import runtime
from rollout.codec import serialize, type_hash


def test_speaks_rmw_zenohs_wire_format() -> None:
    """A plain zenoh peer sees what a ROS 2 node under rmw_zenoh would: key, CDR, attachment, tokens."""
    runtime.init([], signals=False)
    try:
        node = runtime.Node("talker", namespace="/demo")
        pub = node.create_publisher("std_msgs/msg/String", "chatter", 10)
        session = runtime.get_context().session
        string_hash = "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
        assert type_hash("std_msgs/msg/String") == string_hash
        samples: list[zenoh.Sample] = []
        sub = session.declare_subscriber(f"0/demo/chatter/std_msgs::msg::dds_::String_/{string_hash}", samples.append)
        time.sleep(0.2)
        msg = pub.msg_type(data="hello")
        pub.publish(msg)
        pub.publish(msg)
        deadline = time.monotonic() + 5
        while len(samples) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(samples) == 2
        assert samples[0].payload.to_bytes() == serialize(msg)
        assert samples[0].payload.to_bytes()[:4] == b"\x00\x01\x00\x00"
        att = [s.attachment.to_bytes() for s in samples]
        assert [len(a) for a in att] == [33, 33]
        seqs = [struct.unpack_from("<q", a)[0] for a in att]
        assert seqs == [1, 2] and att[0][16] == 16 and att[0][17:] == att[1][17:]
        zid = str(session.info.zid())
        tokens = [str(r.ok.key_expr) for r in session.liveliness().get("@ros2_lv/0/**") if r.ok is not None]
        assert any(t.startswith(f"@ros2_lv/0/{zid}/") and t.endswith("/NN/%/%demo/talker") for t in tokens), tokens
        mp = [t for t in tokens if "/MP/" in t and "%demo%chatter" in t]
        assert len(mp) == 1 and mp[0].endswith(f"/%demo%chatter/std_msgs::msg::dds_::String_/{string_hash}/::,10:,:,:,,")
        sub.undeclare()
        node.destroy_node()
    finally:
        runtime.close()
