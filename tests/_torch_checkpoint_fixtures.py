"""Writes the fixtures of tests/vision_torch_checkpoint_test.ts into the folder given as argv[1].

PyTorch itself writes the zip and legacy checkpoints; the tar layout of PyTorch <= 0.1 (which
PyTorch 1.13 reads but no longer writes) is built here from its specification and checked by
loading it back with torch.load. Each tensor's expected values are written as raw little-endian
float32 (`expected/<name>.f32`, row-major) with `expected.json` giving dtype and shape.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import tarfile
import zipfile

try:
    import torch
except ImportError:
    sys.exit("Python's torch is missing: install the Debian package python3-torch "
             "(apt-get install python3-torch).")

DTYPE_NAMES = {
    torch.float32: "float32", torch.float64: "float64", torch.float16: "float16",
    torch.bfloat16: "bfloat16", torch.int64: "int64", torch.int32: "int32",
    torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8", torch.bool: "bool",
}


def main_state_dict(gen):
    """Random tensors of every dtype, views, shared storages, a scalar and a module's buffers."""
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(3, 4, 5, generator=gen)
    sd["f64"] = torch.randn(7, generator=gen, dtype=torch.float64) * 1e3
    sd["f16"] = torch.randn(2, 3, generator=gen).half()
    sd["bf16"] = torch.randn(4, 2, generator=gen).bfloat16()
    sd["i64"] = torch.randint(-2**40, 2**40, (5,), generator=gen, dtype=torch.int64)
    sd["i32"] = torch.randint(-2**30, 2**30, (2, 2), generator=gen, dtype=torch.int32)
    sd["i16"] = torch.randint(-2**15, 2**15, (3,), generator=gen, dtype=torch.int16)
    sd["i8"] = torch.randint(-128, 128, (3,), generator=gen, dtype=torch.int8)
    sd["u8"] = torch.randint(0, 256, (4,), generator=gen, dtype=torch.uint8)
    sd["flag"] = torch.tensor([True, False, True])
    base = torch.randn(4, 6, generator=gen)
    sd["base"] = base
    sd["transposed"] = base.t()  # non-contiguous view of the same storage
    sd["slice"] = base[1:3, ::2]  # storage offset 6, strides (6, 2)
    sd["row"] = base[2]  # storage offset 12
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=gen))
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    for key, value in net.state_dict().items():
        sd["net." + key] = value
    # As module.state_dict() returns it: an OrderedDict with a _metadata attribute (pickled as
    # the dict's state, a BUILD opcode).
    sd._metadata = net.state_dict()._metadata
    return sd


def write_expected(folder, sd):
    os.makedirs(os.path.join(folder, "expected"), exist_ok=True)
    meta = collections.OrderedDict()
    for key, t in sd.items():
        meta[key] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape)}
        values = t.detach().contiguous().to(torch.float32).numpy().astype("<f4")
        with open(os.path.join(folder, "expected", key + ".f32"), "wb") as f:
            f.write(values.tobytes())
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(meta, f)


def write_tar(path, sd):
    """The PyTorch <= 0.1 tar layout: members sys_info, pickle, storages and tensors."""
    storages = collections.OrderedDict()  # storage key -> contiguous storage tensor
    records = []  # (tensor key, storage key, tensor)
    tensor_keys = {}
    for name, t in sd.items():
        ptr = t.storage().data_ptr()
        if ptr not in storages:
            storages[ptr] = (len(storages), t)
        tensor_keys[name] = 100 + len(records)
        records.append((tensor_keys[name], storages[ptr][0], t))

    def member(tar, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True,
                             "type_sizes": {"short": 2, "int": 4, "long": 8}}, protocol=2)
    store = io.BytesIO()
    pickle.dump(len(storages), store, protocol=2)
    for key, t in storages.values():
        whole = torch.tensor([], dtype=t.dtype).set_(t.storage())
        pickle.dump((key, "cpu", getattr(torch, t.storage().pickle_storage_type())), store,
                    protocol=2)
        store.write(struct.pack("<q", whole.numel()))
        store.write(whole.numpy().tobytes())
    pickle.dump([], store, protocol=2)  # no storage views
    tensors = io.BytesIO()
    pickle.dump(len(records), tensors, protocol=2)
    for key, skey, t in records:
        pickle.dump((key, skey, torch.FloatTensor), tensors, protocol=2)
        tensors.write(struct.pack("<ii", t.dim(), 0))
        tensors.write(struct.pack("<%dq" % t.dim(), *t.shape))
        tensors.write(struct.pack("<%dq" % t.dim(), *t.stride()))
        tensors.write(struct.pack("<q", t.storage_offset()))

    class Ref:
        def __init__(self, name):
            self.name = name

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return str(tensor_keys[obj.name]) if isinstance(obj, Ref) else None

    body = io.BytesIO()
    # The state_dict pickle refers to each tensor by its key, as a persistent id.
    Pickler(body, protocol=2).dump(collections.OrderedDict((k, Ref(k)) for k in sd))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        member(tar, "sys_info", sys_info)
        member(tar, "pickle", body.getvalue())
        member(tar, "storages", store.getvalue())
        member(tar, "tensors", tensors.getvalue())
    loaded = torch.load(path)
    assert list(loaded) == list(sd), "tar fixture: keys differ when torch.load reads it back"
    for k in sd:
        assert torch.equal(loaded[k], sd[k]), "tar fixture: %s differs in torch.load" % k


def corrupt_others(path, keep, out):
    """A copy of zip checkpoint `path` whose storages other than those of `keep` are 0xFF."""
    data = bytearray(open(path, "rb").read())
    z = zipfile.ZipFile(path)
    for info in z.infolist():
        if "/data/" not in info.filename or info.filename.rsplit("/", 1)[1] in keep:
            continue
        name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:
                                                        info.header_offset + 30])
        start = info.header_offset + 30 + name_len + extra_len
        data[start:start + info.file_size] = b"\xff" * info.file_size
    open(out, "wb").write(bytes(data))


def corrupt_others_legacy(path, keep, out):
    """A copy of legacy checkpoint `path` whose storages (headers too) are 0xFF but for the
    `keep`-th ones in pickle order."""
    sizes = {}
    order = []

    class Reader(pickle.Unpickler):
        def persistent_load(self, pid):
            sizes[pid[2]] = pid[4] * torch.tensor([], dtype=pid[1].dtype).element_size()
            order.append(pid[2])
            return None

        def find_class(self, module, name):
            if name.endswith("Storage"):
                return getattr(torch, name)
            if name == "OrderedDict":
                return collections.OrderedDict
            return lambda *args: None

    data = bytearray(open(path, "rb").read())
    f = io.BytesIO(bytes(data))
    for _ in range(3):
        pickle.load(f)
    Reader(f).load()
    keys = pickle.load(f)
    at = f.tell()
    keep = {order[i] for i in keep}
    for key in keys:
        end = at + 8 + sizes[key]
        if key not in keep:
            data[at:end] = b"\xff" * (end - at)
        at = end
    open(out, "wb").write(bytes(data))


def to_zip64(path, out):
    """A copy of zip checkpoint `path` whose directory uses zip64 records, as torch.save writes
    for files past 4 GiB: every size and offset of the central directory and end record is
    0xFFFFFFFF (0xFFFF for counts) and the values are in zip64 extra fields and records."""
    data = open(path, "rb").read()
    end = data.rindex(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack("<HII", data[end + 10:end + 20])
    central = bytearray()
    at = cd_offset
    for _ in range(count):
        fixed = bytearray(data[at:at + 46])
        name_len, extra_len, comment_len = struct.unpack("<HHH", fixed[28:34])
        csize, size = struct.unpack("<II", fixed[20:28])
        offset, = struct.unpack("<I", fixed[42:46])
        rest = data[at + 46:at + 46 + name_len + extra_len + comment_len]
        name, extra = rest[:name_len], rest[name_len:name_len + extra_len]
        zip64 = struct.pack("<HHQQQ", 1, 24, size, csize, offset)
        fixed[20:28] = struct.pack("<II", 0xFFFFFFFF, 0xFFFFFFFF)
        fixed[42:46] = struct.pack("<I", 0xFFFFFFFF)
        fixed[30:32] = struct.pack("<H", extra_len + len(zip64))
        central += fixed + name + extra + zip64 + rest[name_len + extra_len:]
        at += 46 + name_len + extra_len + comment_len
    record_at = cd_offset + len(central)
    record = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count,
                         len(central), cd_offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, record_at, 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(out, "wb") as f:
        f.write(data[:cd_offset] + bytes(central) + record + locator + eocd)
    original, copy = torch.load(path), torch.load(out)
    assert all(torch.equal(original[k], copy[k]) for k in original), "zip64 fixture differs"


class Evil:
    """Pickles as a call of os.system: a reader must refuse it without running it."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def main():
    folder = sys.argv[1]
    gen = torch.Generator().manual_seed(7)
    sd = main_state_dict(gen)
    write_expected(folder, sd)
    torch.save(sd, os.path.join(folder, "zip.pt"))
    torch.save(sd, os.path.join(folder, "zip_p4.pt"), pickle_protocol=4)
    to_zip64(os.path.join(folder, "zip.pt"), os.path.join(folder, "zip64.pt"))
    torch.save(sd, os.path.join(folder, "legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save(sd, os.path.join(folder, "legacy_p4.pt"), _use_new_zipfile_serialization=False,
               pickle_protocol=4)
    torch.save({"state_dict": sd, "epoch": 3}, os.path.join(folder, "nested_zip.pt"))
    torch.save({"model": sd, "epoch": 3}, os.path.join(folder, "nested_legacy.pt"),
               _use_new_zipfile_serialization=False)
    floats = collections.OrderedDict(
        (k, v) for k, v in sd.items() if v.dtype == torch.float32 and not isinstance(
            v, torch.nn.Parameter))
    write_expected(os.path.join(folder, "tar"), floats)
    write_tar(os.path.join(folder, "tar.pt"), floats)

    big = collections.OrderedDict(
        ("layer%d.weight" % i, torch.randn(64, 1024, generator=gen)) for i in range(12))
    write_expected(os.path.join(folder, "big"), big)
    torch.save(big, os.path.join(folder, "big_zip.pt"))
    torch.save(big, os.path.join(folder, "big_legacy.pt"), _use_new_zipfile_serialization=False)
    keep_zip = {"3", "7"}  # storage keys of layer3 and layer7 in the zip file (in save order)
    corrupt_others(os.path.join(folder, "big_zip.pt"), keep_zip,
                   os.path.join(folder, "big_zip_others_ff.pt"))
    corrupt_others_legacy(os.path.join(folder, "big_legacy.pt"), {3, 7},
                          os.path.join(folder, "big_legacy_others_ff.pt"))

    torch.save({"x": Evil()}, os.path.join(folder, "evil_zip.pt"))
    torch.save({"x": Evil()}, os.path.join(folder, "evil_legacy.pt"),
               _use_new_zipfile_serialization=False)
    torch.save([sd["f32"]], os.path.join(folder, "list.pt"))
    torch.save({"a": sd["f32"], "b": 3}, os.path.join(folder, "mixed.pt"))
    with open(os.path.join(folder, "plain.pkl"), "wb") as f:
        pickle.dump({"a": 1}, f, protocol=2)
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("just some text, not a checkpoint\n")


if __name__ == "__main__":
    main()
