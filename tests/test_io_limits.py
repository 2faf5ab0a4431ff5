"""Bounded model loading (docs/security.md): hostile files are a ValueError, never a
MemoryError, RecursionError, tokenizer error or an allocation of what a header claims.

Each case is a reproducer of issue 22 (fuzzing of model files)."""

import io
import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref import io as lrp_io
from lrp_ref.cli import main

MAGIC = np.lib.format.MAGIC_PREFIX


def network():
    rng = np.random.default_rng(0)
    return lrp.Sequential([lrp.Dense(rng.standard_normal((3, 4))), lrp.ReLU(),
                           lrp.Dense(rng.standard_normal((4, 2)))])


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    """An .npz with the given ``{name: bytes}`` members (names without .npy)."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)


def config_member(network_config):
    text = network_config if isinstance(network_config, str) else json.dumps(network_config)
    return npy_bytes(np.array(f'{{"format": "{lrp_io.FORMAT}", "network": {text}}}'))


def good_members():
    net = network()
    return {"__config__": config_member(net.config()),
            **{k: npy_bytes(v) for k, v in net.state().items()}}


def raw_header(text, version=1):
    """The magic, length and (unchecked) header dict text of an .npy file."""
    body = text.encode("latin1")
    body += b" " * (-(len(MAGIC) + 2 + 2 * version + len(body) + 1) % 64) + b"\n"
    length = struct.pack("<H" if version == 1 else "<I", len(body))
    return MAGIC + bytes([version, 0]) + length + body


def test_a_saved_network_still_loads_bit_exactly(tmp_path):
    net = network()
    lrp.save(net, tmp_path / "net.npz")
    loaded = lrp.load(tmp_path / "net.npz")
    assert loaded.config() == net.config()
    for key, array in net.state().items():
        np.testing.assert_array_equal(loaded.state()[key], array)


def test_an_unused_zip_bomb_member_is_never_decompressed(tmp_path):
    members = good_members()
    # 64 MB of zeros compress to about 64 kB
    members["bomb"] = npy_bytes(np.zeros(8 * 2**20))
    write_zip(tmp_path / "bomb.npz", members, zipfile.ZIP_DEFLATED)
    assert (tmp_path / "bomb.npz").stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"unused arrays \['bomb'\]"):
            lrp.load(tmp_path / "bomb.npz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # reading the member would allocate its 64 MB; checking headers takes kilobytes
    assert peak < 8 * 2**20


def test_declared_sizes_above_the_limit_are_refused_before_reading(tmp_path):
    members = good_members()
    members["2.weight"] = npy_bytes(np.zeros((4, 2**16)))      # 2 MB
    write_zip(tmp_path / "big.npz", members, zipfile.ZIP_DEFLATED)
    with pytest.raises(ValueError, match=r"declare 2,09\d,\d{3} bytes \(at most 1,000,000"):
        lrp.load(tmp_path / "big.npz", max_bytes=1_000_000)


def test_a_header_declaring_a_huge_shape_is_refused_without_allocating(tmp_path):
    members = good_members()
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    members["0.weight"] = raw_header(header) + b"\0" * 96
    write_zip(tmp_path / "huge.npz", members)
    with pytest.raises(ValueError, match=r"0.weight.npy: declares .* bytes but its header "
                                         r"\(shape \(1000000, 1000000\)"):
        lrp.load(tmp_path / "huge.npz")


@pytest.mark.parametrize("header", [
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,",        # tokenize.TokenError
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), 'x': __import__('os')}",
    "[1, 2, 3]",
    "{'descr': 'O', 'fortran_order': False, 'shape': (3, 4), }",
    "{'descr': '<c16', 'fortran_order': False, 'shape': (3, 4), }",
])
def test_malformed_or_forbidden_headers_are_a_value_error(tmp_path, header):
    members = good_members()
    members["0.weight"] = raw_header(header) + b"\0" * 192
    write_zip(tmp_path / "bad.npz", members)
    with pytest.raises(ValueError, match="lrp_ref model file"):
        lrp.load(tmp_path / "bad.npz")


def test_an_unsupported_compression_method_is_a_value_error(tmp_path):
    write_zip(tmp_path / "net.npz", good_members())
    data = bytearray((tmp_path / "net.npz").read_bytes())
    # method 98 (PPMd) in every local header (offset 8) and central entry (offset 10)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = data.find(signature)
        while start >= 0:
            data[start + offset:start + offset + 2] = struct.pack("<H", 98)
            start = data.find(signature, start + 4)
    (tmp_path / "ppmd.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="unsupported compression method 98"):
        lrp.load(tmp_path / "ppmd.npz")


def nested(depth):
    """The JSON text of ``depth`` Sequentials nested around a ReLU (too deep for json.dumps)."""
    return '{"type": "Sequential", "layers": [' * depth + '{"type": "ReLU"}' + "]}" * depth


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path):
    write_zip(tmp_path / "deep.npz", {"__config__": config_member(nested(100))})
    with pytest.raises(ValueError, match="nest deeper than MAX_DEPTH = 64"):
        lrp.load(tmp_path / "deep.npz")
    # deeper than the JSON parser's own recursion limit
    write_zip(tmp_path / "deeper.npz", {"__config__": config_member(nested(5000))})
    with pytest.raises(ValueError, match="MAX_DEPTH = 64"):
        lrp.load(tmp_path / "deeper.npz")
    write_zip(tmp_path / "ok.npz", {"__config__": config_member(nested(40))})
    assert lrp.load(tmp_path / "ok.npz").forward(np.ones((1, 2))).shape == (1, 2)


def test_deeply_nested_json_is_refused(tmp_path):
    text = json.dumps({"format": lrp_io.FORMAT, "network": {"type": "ReLU"}})
    text = text[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    write_zip(tmp_path / "json.npz", {"__config__": npy_bytes(np.array(text))})
    with pytest.raises(ValueError, match="lrp_ref model file"):
        lrp.load(tmp_path / "json.npz")


def test_too_many_layers_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(lrp_io, "MAX_LAYERS", 10)
    config = {"type": "Sequential", "layers": [{"type": "ReLU"}] * 10}
    write_zip(tmp_path / "wide.npz", {"__config__": config_member(config)})
    with pytest.raises(ValueError, match="more than MAX_LAYERS = 10 layers"):
        lrp.load(tmp_path / "wide.npz")


@pytest.mark.parametrize("kind", ["Container", "LinearLayer", "PassThrough", "BatchNorm"])
def test_only_concrete_layer_types_load(tmp_path, kind):
    write_zip(tmp_path / "abstract.npz", {"__config__": config_member({"type": kind})})
    with pytest.raises(ValueError, match=f"unknown layer type '{kind}'"):
        lrp.load(tmp_path / "abstract.npz")


def test_a_conv_padding_as_large_as_the_kernel_is_refused(tmp_path):
    conv = lrp.Conv2d(np.ones((1, 1, 3, 3)), padding=1)
    members = {"__config__": config_member({**conv.config(), "padding": [1000000, 1000000]}),
               **{k: npy_bytes(v) for k, v in conv.state().items()}}
    write_zip(tmp_path / "pad.npz", members)
    with pytest.raises(ValueError, match=r"padding \(1000000, 1000000\) must be smaller than "
                                         r"the kernel \(3, 3\)"):
        lrp.load(tmp_path / "pad.npz")
    with pytest.raises(ValueError, match="must be smaller than the kernel"):
        lrp.save(lrp.Conv2d(np.ones((1, 1, 3, 3)), padding=3), tmp_path / "p.npz")


def test_duplicate_and_non_npy_members_are_refused(tmp_path):
    members = good_members()
    with zipfile.ZipFile(tmp_path / "dup.npz", "w") as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("0.weight.npy", members["0.weight"])
    with pytest.raises(ValueError, match="'0.weight' appears twice"):
        lrp.load(tmp_path / "dup.npz")
    with zipfile.ZipFile(tmp_path / "txt.npz", "w") as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)
        z.writestr("readme.txt", b"hello")
    with pytest.raises(ValueError, match="'readme.txt' is not an .npy array"):
        lrp.load(tmp_path / "txt.npz")


def test_flipped_bits_and_truncations_give_a_value_error_or_the_same_network(tmp_path):
    net = network()
    lrp.save(net, tmp_path / "net.npz")
    data = (tmp_path / "net.npz").read_bytes()
    rng = np.random.default_rng(1)
    outcomes = {"refused": 0, "same": 0}
    for trial in range(300):
        bad = bytearray(data)
        if trial % 3 == 0:
            bad = bad[:rng.integers(len(bad))]
        else:
            for bit in rng.integers(8 * len(bad), size=1 + trial % 4):
                bad[bit // 8] ^= 1 << (bit % 8)
        (tmp_path / "bad.npz").write_bytes(bytes(bad))
        try:
            loaded = lrp.load(tmp_path / "bad.npz")
        except ValueError:
            outcomes["refused"] += 1
            continue
        # a flip in a field load does not read (a date, a comment) leaves the network as it was
        assert loaded.config() == net.config()
        for key, array in net.state().items():
            np.testing.assert_array_equal(loaded.state()[key], array)
        outcomes["same"] += 1
    assert outcomes["refused"] > 100


# -- the command line: one line, never a traceback ------------------------------------------


def run(args, capsys):
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.fixture
def model(tmp_path):
    lrp.save(network(), tmp_path / "net.npz")
    return tmp_path / "net.npz"


def test_cli_refuses_a_complex_input(tmp_path, model, capsys):
    np.save(tmp_path / "x.npy", np.ones((1, 3)) + 1j)
    code, err = run(["explain", "--model", model, "--input", tmp_path / "x.npy",
                     "--rule", "epsilon"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "expected a real numeric array (bool, integer or float), got dtype complex128" in err


def test_cli_refuses_an_npz_named_npy(tmp_path, model, capsys):
    np.savez(tmp_path / "x.npz", x=np.ones((1, 3)))
    (tmp_path / "x.npz").rename(tmp_path / "x.npy")
    code, err = run(["explain", "--model", model, "--input", tmp_path / "x.npy",
                     "--rule", "epsilon"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "an .npz archive, not an .npy array" in err


def test_cli_refuses_an_input_header_larger_than_the_file(tmp_path, model, capsys):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }"
    (tmp_path / "x.npy").write_bytes(raw_header(header) + b"\0" * 24)
    code, err = run(["explain", "--model", model, "--input", tmp_path / "x.npy",
                     "--rule", "epsilon"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "declares shape (100000, 100000)" in err


@pytest.mark.parametrize("case", ["deep", "huge", "bomb"])
def test_cli_prints_one_line_for_hostile_model_files(tmp_path, capsys, case):
    np.save(tmp_path / "x.npy", np.ones((1, 2)))
    if case == "deep":
        write_zip(tmp_path / "m.npz", {"__config__": config_member(nested(450))})
    else:
        members = good_members()
        huge = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
        members["0.weight" if case == "huge" else "bomb"] = (
            raw_header(huge) + b"\0" * 96 if case == "huge" else npy_bytes(np.zeros(2**20)))
        write_zip(tmp_path / "m.npz", members, zipfile.ZIP_DEFLATED)
    code, err = run(["explain", "--model", tmp_path / "m.npz", "--input", tmp_path / "x.npy",
                     "--rule", "epsilon"], capsys)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "malformed lrp_ref model file" in err or "not a readable" in err


def test_too_many_members_are_refused_before_the_directory_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(lrp_io, "MAX_MEMBERS", 5)
    members = good_members()
    members.update({f"x{k}": npy_bytes(np.zeros(1)) for k in range(5)})
    write_zip(tmp_path / "many.npz", members)
    read = []
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: read.append(self))
    with pytest.raises(ValueError, match=r"10 arrays \(at most 5\)"):
        lrp.load(tmp_path / "many.npz")
    assert read == []


def test_an_open_binary_file_loads_as_a_path_does(tmp_path):
    net = network()
    lrp.save(net, tmp_path / "net.npz")
    with open(tmp_path / "net.npz", "rb") as f:
        assert lrp.load(f).config() == net.config()
    np.save(tmp_path / "x.npy", np.ones(3))
    with open(tmp_path / "x.npy", "rb") as f, pytest.raises(ValueError, match="single array"):
        lrp.load(f)
