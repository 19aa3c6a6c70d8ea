#!/usr/bin/env bash
# Writes the committed seed corpus, seeds/<target>/, a few small files per target (docs/fuzzing.md).
# Re-run after changing an input format:  bash crates/cpx-card/fuzz/make-seeds.sh
set -euo pipefail
cd "$(dirname "$0")"
rm -rf seeds
seed() { # seed TARGET NAME HEX… (spaces allowed between bytes)
  local dir="seeds/$1" name=$2
  shift 2
  mkdir -p "$dir"
  printf '%s' "$*" | tr -d ' ' | xxd -r -p >"$dir/$name"
}
cards=../../../test-vectors/cards

# apdu: status words, a 61xx announce, an FCP (docs/card-spec.md §1.3, EF.SN.ICC), a case-4 command.
seed apdu sw-9000 9000
seed apdu sw-6110 6110
seed apdu fcp-ef-sn-icc 6225 8002000C 820101 8302D003 8801E0 A112 8C077BFFFFFFFFFF00 9C077BFFFFFFFFFF00 8A0105
seed apdu case4-select 00A4090C023F00

# certificates: a real test certificate, and business data TLV (EE { 80 text }).
mkdir -p seeds/certificates
cp "$cards/cps3-doctor/sign.der" seeds/certificates/cps3-sign.der
seed certificates name-ps EE0A80084D45444543494E

# parsers: the real CPS3 PIN counter reply (docs/card-spec.md §3.2), an EF_ACTUA (docs/card-spec.md §5.7), a
# PKCS#1 type 2 block.
seed parsers pin-data 7016BF810112A0109A01039B0103A1088C06F3000013FF00
seed parsers ef-actua 7010810720240101000000820720300101000000
seed parsers pkcs1-type2 0002FFFFFFFFFFFFFFFF00414243

# card_responses: ATR index, then `len ‖ answer` records (every answer 9000, then a PIN reply).
seed card_responses cps3-ok 00029000029000029000
seed card_responses cps4-pin 01029000029000021863C3

# hostile_card: `image ‖ operations (16-bit mask) ‖ rules (step ‖ kind ‖ parameters)`
# (fuzz_targets/common/hostile.rs). Plain sessions on the three cards, every operation but sign:
seed hostile_card cps3-plain 00EFFF
seed hostile_card cps4-plain 01EFFF
seed hostile_card cps3-contactless-plain 02EFFF
# One rule of each kind, on benign values:
seed hostile_card status-word 00EFFF 05 02 01             # step 5: 6A82, no data
seed hostile_card length-form 01EFFF0301000100         # step 3: node 0 in form 82, true length
# An FCP size of every length (1-4 bytes, tag 80 or 81), benign values; the fuzzer picks others:
seed hostile_card fcp-size-1 00EFFF 00 00 00 00 20          # 80 01 20
seed hostile_card fcp-size-2 01EFFF 00 00 00 01 00F0        # 80 02 00F0
seed hostile_card fcp-size-3 00EFFF 00 00 01 02 000100      # 81 03 000100
seed hostile_card fcp-size-4 01EFFF 00 00 00 03 00000100    # 80 04 00000100
# The finding of docs/fuzzing.md (80 04 FF000000 made Io::read_file reserve 4 GiB), replayed by
# every run: it must stay a MalformedCardData error.
seed hostile_card finding-fcp-4gib 06EFFF 00 00 00 03 FF000000
seed hostile_card chain-61 00EFFF0403020810080A        # 61xx chain of 2 pieces
seed hostile_card six-c 01EFFF060410                   # 6C10
seed hostile_card truncate 00EFFF080501                # 1 byte kept
seed hostile_card oversize 01EFFF0706001000            # 16 extra bytes
seed hostile_card flip 00EFFF0A070380                  # one bit flipped
seed hostile_card replace 01EFFF0908026A82             # the answer is 6A82

# pin_model: `image ‖ operations` (fuzz_targets/pin_model.rs): kind % 12 = 0/1 VERIFY PIN,
# 2 VERIFY PUK, 3 change, 4 unblock, 5/6 PIN/PUK status, 7 verified on card, 8 read, 9 logout,
# 10 raw SELECT and 11 raw READ BINARY by another program (CPS3 only).
seed pin_model cps3-verify-status-logout 00 0000 05 0800 09 0800 07
seed pin_model cps4-verify-status-logout 01 0000 05 0800 09 0800 07
seed pin_model cps3-wrong-until-blocked 00 0004 0004 0004 05 040000 05 0000 06
seed pin_model cps4-change-unblock 01 030006 05 0000 040100 0000 06 09
seed pin_model cps3-pin-blocked 02 05 06 0000 040000 0000 05
seed pin_model cps3-puk-blocked 03 05 06 040000 0202 06
seed pin_model malformed 00 0007 0017 030700 040300 05 06
# The finding of docs/fuzzing.md: unblock, a malformed PUK VERIFY, logout, PUK status (the PUK
# was left verified on the card).
seed pin_model finding-puk-left-verified-cps4 01 04CCCC 02FF 09 06
seed pin_model finding-puk-left-verified-cps3 00 04CCCC 02FF 09 06 0A08 0B
seed pin_model cps3-other-program 00 0A08 0B 0000 0A08 0B 09 0A08 0B 0A02 0B 0A03 0B 0A01 0B 0A00 0B 0800 0AFE 0B 0AFF 0B 0A08 0B
echo "seeds: $(find seeds -type f | wc -l) files, $(du -sh seeds | cut -f1)"
