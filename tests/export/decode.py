#!/usr/bin/env python3
"""Decode Opticon's export encodings with independent decoders.

    decode.py snappy RAW COMPRESSED...   each COMPRESSED must decompress
                                         (python-snappy) to the bytes of
                                         the matching RAW file (pairs)
    decode.py remote-write BODY...       each BODY: snappy, then a
                                         Prometheus WriteRequest parsed by
                                         the protobuf runtime; prints one
                                         JSON line per time series

Used by tests/it/export.rs; needs python3-snappy and python3-protobuf.
"""
import json
import sys

import snappy
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def write_request_class():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="remote.proto", package="prometheus", syntax="proto3")

    def message(name, fields):
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name

    message("Label", [("name", 1, F.TYPE_STRING, F.LABEL_OPTIONAL, None),
                      ("value", 2, F.TYPE_STRING, F.LABEL_OPTIONAL, None)])
    message("Sample", [("value", 1, F.TYPE_DOUBLE, F.LABEL_OPTIONAL, None),
                       ("timestamp", 2, F.TYPE_INT64, F.LABEL_OPTIONAL, None)])
    message("TimeSeries", [
        ("labels", 1, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".prometheus.Label"),
        ("samples", 2, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".prometheus.Sample")])
    message("WriteRequest", [
        ("timeseries", 1, F.TYPE_MESSAGE, F.LABEL_REPEATED,
         ".prometheus.TimeSeries")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("prometheus.WriteRequest")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def main():
    mode, files = sys.argv[1], sys.argv[2:]
    if mode == "snappy":
        for raw, packed in zip(files[::2], files[1::2]):
            with open(raw, "rb") as r, open(packed, "rb") as p:
                want, got = r.read(), snappy.uncompress(p.read())
            if want != got:
                sys.exit(f"{packed}: decompresses to {len(got)} bytes, "
                         f"not the {len(want)} of {raw}")
        print(f"ok {len(files) // 2}")
    elif mode == "remote-write":
        cls = write_request_class()
        for body in files:
            with open(body, "rb") as f:
                req = cls()
                req.ParseFromString(snappy.uncompress(f.read()))
            for ts in req.timeseries:
                print(json.dumps({
                    "labels": [[l.name, l.value] for l in ts.labels],
                    "samples": [[s.value, s.timestamp] for s in ts.samples],
                }))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
