"""Repack a wheel without the files an offline GPU machine does not need (used by bench/offline_wheels.sh).

    python bench/slim_wheel.py WHEEL --drop PREFIX [--drop PREFIX ...] [--keep-so NAME]

Unsloth's wheel is mostly its web UI (`studio/`); bitsandbytes' holds one binary per CUDA/ROCm version. The
RECORD file is rewritten to list only what remains, so pip installs (and uninstalls) the slim wheel cleanly.
"""
import argparse
import os
import zipfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wheel")
    ap.add_argument("--drop", action="append", default=[], help="path prefix inside the wheel to leave out")
    ap.add_argument("--keep-so", help="keep only this .so among the package's shared libraries")
    a = ap.parse_args()

    def dropped(name: str) -> bool:
        if any(name.startswith(p) for p in a.drop):
            return True
        return bool(a.keep_so) and name.endswith(".so") and os.path.basename(name) != a.keep_so

    tmp = a.wheel + ".tmp"
    with zipfile.ZipFile(a.wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if dropped(info.filename):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = ("\n".join(l for l in lines if not dropped(l.split(",")[0])) + "\n").encode()
            dst.writestr(info, data)
    before, after = os.path.getsize(a.wheel), os.path.getsize(tmp)
    os.replace(tmp, a.wheel)
    print(f"{os.path.basename(a.wheel)}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
