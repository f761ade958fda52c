#!/usr/bin/env bash
# Builds the disk-image test corpus into <dir>: real images made with qemu-img, genisoimage and sfdisk,
# plus hostile variants patched byte by byte. Idempotent: a file that already exists is left alone.
# Takes a couple of seconds (the gzip bomb is the slowest part and runs alongside the rest).
#
# File (upload as disk_format/container_format)  -> expected outcome of an upload
# Good:
#   raw.img                  raw/bare        raw, 4 MiB of zeros, virtual size = 4 MiB
#   qcow2-v2.qcow2           qcow2/bare      qcow2 compat=0.10, virtual 16 MiB
#   qcow2-v3.qcow2           qcow2/bare      qcow2 compat=1.1, virtual 32 MiB
#   vmdk-sparse.vmdk         vmdk/bare       monolithicSparse, virtual 8 MiB
#   vmdk-stream.vmdk         vmdk/bare       streamOptimized as qemu-img writes it (grain directory in
#                                            the header, no footer), virtual 8 MiB
#   vmdk-stream-footer.vmdk  vmdk/bare       streamOptimized with the header's gdOffset = GD_AT_END and
#                                            a valid footer before the end-of-stream marker (what
#                                            VMware writes), virtual 8 MiB
#   vhd.vhd                  vhd/bare        vpc (force_size, so exactly 8 MiB)
#   vhdx.vhdx                vhdx/bare       virtual 16 MiB
#   vdi.vdi                  vdi/bare        virtual 8 MiB
#   iso.iso                  iso/bare        ISO 9660 of one small file; virtual size = file size
#   iso-with-qcow2-member.iso iso/bare       harmless ISO holding qcow2-v2.qcow2 as a member
#   iso-gpt-hybrid.iso       iso/bare        iso.iso with a protective MBR in its system area: matches
#                                            iso and gpt, which counts as iso
#   gpt.img                  raw/bare        4 MiB disk, GPT made by sfdisk (detected gpt, counts as raw)
#   mbr.img                  raw/bare        4 MiB disk, DOS label made by sfdisk (detected gpt)
#   luks.img                 raw/bare        LUKS1 header (payload at 2 MiB) + 4 MiB payload; detected
#                                            luks, accepted as raw with virtual size = byte count. The
#                                            header is written by hand: qemu-img's luks driver spends
#                                            ~2.5 s benchmarking PBKDF2 and fails outright on hosts
#                                            without accurate thread CPU accounting.
# Compressed (container_format compressed: uploads are not inspected; for image_decompression):
#   bomb.raw.gz              256 MiB of zeros, ~260 KiB gzipped
#   qcow2.gz                 gzip of qcow2-v2.qcow2
#   raw.zip                  zip with one member (raw.img)
#   two-members.zip          zip with two members
#   raw.img.bz2, raw.img.xz  raw.img compressed
# Hostile (rejected):
#   qcow2-backing.qcow2      qcow2/bare  backing file /etc/passwd (raw)        -> backing_file
#   qcow2-datafile.qcow2     qcow2/bare  external data file                     -> data_file
#   qcow2-unknown-feature.qcow2 qcow2/bare v3 with incompatible feature bit 40  -> unknown_features
#   qcow2-exabyte.qcow2      qcow2/bare  v3 whose header claims 1 EiB (qemu-img: "Image is too big")
#                                        -> virtual size beyond any limit
#   qcow2-100t.qcow2         qcow2/bare  a real 100 TiB qcow2 (a few MiB of metadata)
#                                        -> virtual size above virtual_size_cap (64 TiB)
#   vmdk-flat-passwd.vmdk    vmdk/bare   text descriptor, monolithicFlat, extent "/etc/passwd" (qemu-img
#                                        really serves that host file as the disk)
#                                        -> descriptor: Unsupported subformat
#   vmdk-url-extent.vmdk     vmdk/bare   text descriptor claiming monolithicSparse with a URL extent
#                                        -> descriptor: Invalid extent filenames found
#   vmdk-sparse-evil-extent.vmdk vmdk/bare sparse header whose embedded descriptor names "/etc/passwd"
#                                        -> descriptor: Invalid extent filenames found
#   vmdk-sparse-flat-type.vmdk vmdk/bare sparse header whose embedded descriptor says monolithicFlat
#                                        -> descriptor: Unsupported subformat
#   vmdk-stream-bad-footer.vmdk vmdk/bare GD_AT_END header and a footer naming another descriptor
#                                        -> footer
#   qed.qed                  raw/bare    qed is always refused                  -> banned
#   luks2.img                raw/bare    LUKS version 2 header                  -> version
#   gpt-bad-bootflag.img     raw/bare    gpt.img with boot flag 0x01 in PTE 0   -> mbr
#   iso-qcow2-polyglot.iso   iso/bare    iso.iso with qcow2-v2's first 512 bytes over the zeroed system
#                                        area -> Multiple formats detected: iso,qcow2
#   liar.vmdk                vmdk/bare   THE LIAR: a qcow2 (copy of qcow2-v3.qcow2) claimed as vmdk
#                                        -> does not match stream data qcow2
#                                        (qcow2-v3.qcow2 claimed raw is refused the same way unless
#                                        require_raw_format_match is off; test/helpers/corpus.ts
#                                        lists both uploads)
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 <dir>" >&2; exit 2; }
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.work.XXXXXX")
bomb_pid=
# On failure, let the background gzip finish before removing the dir it writes into.
trap '[ -z "$bomb_pid" ] || wait "$bomb_pid" 2>/dev/null; rm -rf "$work"' EXIT

MiB=$((1024 * 1024))

# Each image is made in the work dir (so names qemu-img writes into headers are bare names, never
# paths) and moved into place only when complete, so an interrupted run leaves no half-made file.
need() { [ ! -e "$out/$1" ]; }
publish() { mv "$work/$1" "$out/$1"; }

# Overwrites bytes of a file in place: poke FILE OFFSET HEXBYTES.
poke() {
  printf "$(printf '%s' "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# The bomb is the one slow step; run it in parallel with the rest.
if need bomb.raw.gz; then
  ( head -c $((256 * MiB)) /dev/zero | gzip -9 >"$work/bomb.raw.gz" && publish bomb.raw.gz ) &
  bomb_pid=$!
fi

cd "$work"

# --- good images ---
if need raw.img; then qemu-img create -q -f raw raw.img 4M; publish raw.img; fi
if need qcow2-v2.qcow2; then qemu-img create -q -f qcow2 -o compat=0.10 qcow2-v2.qcow2 16M; publish qcow2-v2.qcow2; fi
if need qcow2-v3.qcow2; then qemu-img create -q -f qcow2 -o compat=1.1 qcow2-v3.qcow2 32M; publish qcow2-v3.qcow2; fi
if need vmdk-sparse.vmdk; then
  qemu-img create -q -f vmdk -o subformat=monolithicSparse vmdk-sparse.vmdk 8M; publish vmdk-sparse.vmdk
fi
# `create` would not write a stream; convert does (compressed grains + end-of-stream marker).
if need vmdk-stream.vmdk; then
  qemu-img create -q -f raw stream-src.img 8M
  printf 'gaze stream data' | dd of=stream-src.img bs=1 seek=$((3 * MiB)) conv=notrunc status=none
  qemu-img convert -f raw -O vmdk -o subformat=streamOptimized stream-src.img vmdk-stream.vmdk
  rm -f stream-src.img
  publish vmdk-stream.vmdk
fi
if need vhd.vhd; then qemu-img create -q -f vpc -o force_size=on vhd.vhd 8M; publish vhd.vhd; fi
if need vhdx.vhdx; then qemu-img create -q -f vhdx vhdx.vhdx 16M; publish vhdx.vhdx; fi
if need vdi.vdi; then qemu-img create -q -f vdi vdi.vdi 8M; publish vdi.vdi; fi
if need iso.iso; then
  mkdir -p iso-src; printf 'Gaze test ISO\n' >iso-src/readme.txt
  genisoimage -quiet -V GAZE -o iso.iso iso-src; publish iso.iso
fi
if need iso-with-qcow2-member.iso; then
  mkdir -p iso-member; cp "$out/qcow2-v2.qcow2" iso-member/disk.qcow2
  genisoimage -quiet -V GAZE -o iso-with-qcow2-member.iso iso-member; publish iso-with-qcow2-member.iso
fi
if need iso-gpt-hybrid.iso; then
  cp "$out/iso.iso" iso-gpt-hybrid.iso
  # Protective MBR entry 0: CHS 0/2/0, type 0xEE, end CHS ff/ff/ff, LBA 1, size 0xffffffff; signature.
  poke iso-gpt-hybrid.iso 446 00000200eeffffff01000000ffffffff; poke iso-gpt-hybrid.iso 510 55aa
  publish iso-gpt-hybrid.iso
fi
if need gpt.img; then
  truncate -s 4M gpt.img; printf 'label: gpt\nstart=2048, type=L\n' | sfdisk -q gpt.img; publish gpt.img
fi
if need mbr.img; then
  truncate -s 4M mbr.img; printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q mbr.img; publish mbr.img
fi

# --- compressed ---
if need qcow2.gz; then gzip -9 -n -c "$out/qcow2-v2.qcow2" >qcow2.gz; publish qcow2.gz; fi
if need raw.zip; then cp "$out/raw.img" .; zip -q -X -j raw.zip raw.img; rm raw.img; publish raw.zip; fi
if need two-members.zip; then
  printf 'second member\n' >notes.txt; cp "$out/raw.img" .
  zip -q -X -j two-members.zip raw.img notes.txt; rm raw.img notes.txt; publish two-members.zip
fi
if need raw.img.bz2; then bzip2 -c "$out/raw.img" >raw.img.bz2; publish raw.img.bz2; fi
if need raw.img.xz; then xz -c "$out/raw.img" >raw.img.xz; publish raw.img.xz; fi

# --- hostile ---
if need qcow2-backing.qcow2; then
  qemu-img create -q -f qcow2 -u -b /etc/passwd -F raw qcow2-backing.qcow2 1M; publish qcow2-backing.qcow2
fi
if need qcow2-datafile.qcow2; then
  qemu-img create -q -f qcow2 -o data_file=datafile.raw qcow2-datafile.qcow2 1M
  rm -f datafile.raw
  publish qcow2-datafile.qcow2
fi
if need qcow2-unknown-feature.qcow2; then
  qemu-img create -q -f qcow2 -o compat=1.1 qcow2-unknown-feature.qcow2 1M
  # incompatible_features is a big-endian u64 at 72: bit 40 lives in byte 72 + 7 - 5 = 74.
  poke qcow2-unknown-feature.qcow2 74 01
  publish qcow2-unknown-feature.qcow2
fi
if need qcow2-exabyte.qcow2; then
  qemu-img create -q -f qcow2 -o compat=1.1 qcow2-exabyte.qcow2 1M
  # the virtual size is a big-endian u64 at 24: 2^60 bytes
  poke qcow2-exabyte.qcow2 24 1000000000000000
  publish qcow2-exabyte.qcow2
fi
if need qcow2-100t.qcow2; then qemu-img create -q -f qcow2 qcow2-100t.qcow2 100T; publish qcow2-100t.qcow2; fi
if need vmdk-flat-passwd.vmdk; then
  printf '%s\n' '# Disk DescriptorFile' 'version=1' 'CID=fffffffe' 'parentCID=ffffffff' \
    'createType="monolithicFlat"' '' '# Extent description' 'RW 2048 FLAT "/etc/passwd" 0' '' \
    '# The Disk Data Base' '#DDB' '' 'ddb.virtualHWVersion = "4"' 'ddb.adapterType = "ide"' \
    >vmdk-flat-passwd.vmdk
  publish vmdk-flat-passwd.vmdk
fi
if need vmdk-url-extent.vmdk; then
  printf '%s\n' '# Disk DescriptorFile' 'version=1' 'CID=fffffffe' 'parentCID=ffffffff' \
    'createType="monolithicSparse"' '' '# Extent description' 'RW 2048 FLAT "http://127.0.0.1/x" 0' '' \
    '# The Disk Data Base' '#DDB' '' 'ddb.virtualHWVersion = "4"' >vmdk-url-extent.vmdk
  publish vmdk-url-extent.vmdk
fi
if need qed.qed; then qemu-img create -q -f qed qed.qed 8M; publish qed.qed; fi
if need gpt-bad-bootflag.img; then
  cp "$out/gpt.img" gpt-bad-bootflag.img; poke gpt-bad-bootflag.img 446 01; publish gpt-bad-bootflag.img
fi
if need iso-qcow2-polyglot.iso; then
  cp "$out/iso.iso" iso-qcow2-polyglot.iso
  dd if="$out/qcow2-v2.qcow2" of=iso-qcow2-polyglot.iso bs=512 count=1 conv=notrunc status=none
  publish iso-qcow2-polyglot.iso
fi
# The liar: qcow2 content, to be uploaded with disk_format vmdk.
if need liar.vmdk; then cp "$out/qcow2-v3.qcow2" liar.vmdk; publish liar.vmdk; fi

# --- crafted byte by byte, all in one python3 run (its start-up would otherwise dominate) ---
# Jobs are "op file [args]"; sparse VMDKs to edit are made by qemu-img first.
jobs=()
if need luks.img; then jobs+=("luks luks.img 1"); fi
if need luks2.img; then jobs+=("luks luks2.img 2"); fi
if need vmdk-sparse-evil-extent.vmdk; then
  qemu-img create -q -f vmdk -o subformat=monolithicSparse vmdk-sparse-evil-extent.vmdk 8M
  jobs+=("evil-extent vmdk-sparse-evil-extent.vmdk")
fi
if need vmdk-sparse-flat-type.vmdk; then
  qemu-img create -q -f vmdk -o subformat=monolithicSparse vmdk-sparse-flat-type.vmdk 8M
  jobs+=("flat-type vmdk-sparse-flat-type.vmdk")
fi
if need vmdk-stream-footer.vmdk; then jobs+=("footer vmdk-stream-footer.vmdk good"); fi
if need vmdk-stream-bad-footer.vmdk; then jobs+=("footer vmdk-stream-bad-footer.vmdk bad"); fi
if [ ${#jobs[@]} -gt 0 ]; then
  python3 - "$out" "${jobs[@]}" <<'EOF'
import os, struct, sys

out = sys.argv[1]

def luks(path, version):
    # LUKS1 phdr (big-endian): magic, version, cipher name/mode, hash, payload offset (sectors), key
    # bytes, digest, salt, iterations, uuid, then 8 key slots (inactive = 0x0000DEAD). Inactive slots
    # keep random salt out of the bytes an MBR signature check looks at.
    payload_sectors = 4096
    hdr = struct.pack('>6sH32s32s32sII20s32sI40s', b'LUKS\xba\xbe', int(version), b'aes', b'xts-plain64',
                      b'sha256', payload_sectors, 64, b'\x11' * 20, b'\x22' * 32, 1000,
                      b'0a9b1a5e-9d2c-4b53-a3a1-6a3c1f3f0c11')
    for slot in range(8):
        hdr += struct.pack('>II32sII', 0x0000DEAD, 0, b'\0' * 32, 8 + slot * 512, 4000)
    with open(path, 'wb') as f:
        f.write(hdr)
        f.truncate(payload_sectors * 512 + 4 * 1024 * 1024)

def edit_descriptor(path, edit):
    # The descriptor embedded in a sparse VMDK is NUL-padded text at the header's descriptor offset.
    with open(path, 'r+b') as f:
        desc_sec, desc_num = struct.unpack_from('<QQ', f.read(64), 28)
        f.seek(desc_sec * 512)
        area = f.read(desc_num * 512)
        text = area.split(b'\0', 1)[0].decode('ascii')
        new = edit(text).encode('ascii')
        assert new != text.encode('ascii') and len(new) < len(area)
        f.seek(desc_sec * 512)
        f.write(new + b'\0' * (len(area) - len(new)))

def footer(path, mode):
    # A stream with its grain directory "at the end" (VMware's layout): header gdOffset = GD_AT_END,
    # and before the final end-of-stream marker a footer marker plus a copy of the header holding the
    # real gdOffset. 'bad' makes the footer name another descriptor than the header does: the check
    # exists because qemu trusts the footer while an inspector reads the header.
    data = open(os.path.join(out, 'vmdk-stream.vmdk'), 'rb').read()
    assert data[:4] == b'KDMV' and data[-512:] == b'\0' * 512  # qemu ends the stream with EOS
    header = bytearray(data[:512])
    foot = bytearray(header)
    struct.pack_into('<Q', header, 56, 0xFFFFFFFFFFFFFFFF)
    if mode == 'bad':
        struct.pack_into('<Q', foot, 36, struct.unpack_from('<Q', foot, 36)[0] + 1)
    marker = struct.pack('<QII', 1, 0, 3) + b'\0' * 496
    with open(path, 'wb') as f:
        f.write(bytes(header) + data[512:-512] + marker + bytes(foot) + b'\0' * 512)

for job in sys.argv[2:]:
    op, path, *args = job.split(' ')
    if op == 'luks':
        luks(path, *args)
    elif op == 'evil-extent':
        edit_descriptor(path, lambda t: t.replace(f'SPARSE "{path}"', 'FLAT "/etc/passwd" 0'))
    elif op == 'flat-type':
        edit_descriptor(path, lambda t: t.replace('monolithicSparse', 'monolithicFlat'))
    elif op == 'footer':
        footer(path, *args)
    else:
        raise SystemExit(f'unknown job {op}')
EOF
  for job in "${jobs[@]}"; do
    read -r _ file _ <<<"$job"
    publish "$file"
  done
fi

if [ -n "$bomb_pid" ]; then wait "$bomb_pid"; bomb_pid=; fi
