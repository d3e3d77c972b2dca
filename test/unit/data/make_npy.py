#!/usr/bin/env python3
"""Writes the .npy fixtures of test/unit/NpyTest.cpp into test/unit/data/npy/ with numpy itself.

    /usr/bin/python3 test/unit/data/make_npy.py

Values follow simple formulas that the C++ test recomputes (see NpyTest.cpp), so no expected-value file is
needed. Besides the good files there are files numpy writes but the reader must refuse (big-endian,
Fortran order, structured dtype).
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "npy")


def save(name, arr, version=None):
    path = os.path.join(OUT, name)
    if version is None:
        np.save(path, arr)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, version=version)


def main():
    os.makedirs(OUT, exist_ok=True)
    save("f32_2x3.npy", (np.arange(6, dtype="<f4") * 0.5 - 1.0).reshape(2, 3))
    save("f64_scalar.npy", np.array(3.25, dtype="<f8"))
    save("f16_4.npy", np.array([0.0, 1.0, -2.5, 65504.0], dtype="<f2"))
    save("i64_3x1x2.npy", (np.arange(6, dtype="<i8") * -1000000000007).reshape(3, 1, 2))
    save("i32_5.npy", np.array([-2147483648, -1, 0, 1, 2147483647], dtype="<i4"))
    save("i16_2x2.npy", np.array([[-32768, -1], [1, 32767]], dtype="<i2"))
    save("i8_4.npy", np.array([-128, -1, 0, 127], dtype="i1"))
    save("u8_3.npy", np.array([0, 128, 255], dtype="u1"))
    save("u16_2.npy", np.array([0, 65535], dtype="<u2"))
    save("u32_2.npy", np.array([0, 4294967295], dtype="<u4"))
    save("u64_2.npy", np.array([0, 18446744073709551615], dtype="<u8"))
    save("bool_5.npy", np.array([True, False, False, True, True]))
    save("f32_empty_0x3.npy", np.zeros((0, 3), dtype="<f4"))
    save("f32_2x3_v2.npy", (np.arange(6, dtype="<f4") * 0.5 - 1.0).reshape(2, 3), version=(2, 0))
    save("f32_2x3_v3.npy", (np.arange(6, dtype="<f4") * 0.5 - 1.0).reshape(2, 3), version=(3, 0))
    # Refused by the reader:
    save("bad_bigendian_f4.npy", np.arange(4, dtype=">f4"))
    save("bad_fortran_2x3.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    save("bad_structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
    print("wrote", len(os.listdir(OUT)), "files to", OUT)


if __name__ == "__main__":
    main()
