#!/bin/sh
# The layer check (a meson test, so CI runs it): every #include "..." of the C and CUDA
# sources and headers must point down or sideways in the layer order, and no folder and no
# file may reach itself through includes. The layers, bottom-up (docs/reading-tour.md):
#
#   kernels  tensor  autograd  nn  diffusion  dmdr          libdmdr
#   tools/data  tools/html  tools/eval  tools/report        the data, page, evaluation and
#                                                           report libraries
#   bench                                                   the benchmark library
#   tools                                                   the dmdr program (every other file
#                                                           of tools/ and its other folders)
#   test                                                    may include anything
#
# A folder below its layer folder belongs to it (kernels/cpu is kernels, test/fuzz is test).
# dmdr_config.h, which meson writes into the build folder, is the build's configuration and
# sits below everything. An include that names no file of the tree is an error too, so that
# nothing escapes the check.
#
# usage: sh test/check_layers.sh [SOURCE_ROOT]   (default: the folder above this script's)
# Prints one line when the tree is clean; else one line per finding (file:line, what it
# includes, both layers; or the cycle with the include behind each step) and exits 1. Its
# last line has the check framework's "Checks:" form, which .ci/run counts: one check.
set -u
root=${1:-$(dirname "$0")/..}
cd "$root" || { echo "check_layers: no folder $root"; exit 2; }

layers="kernels tensor autograd nn diffusion dmdr tools/data tools/html tools/eval tools/report bench tools test"
generated="dmdr_config.h"

files=$(find kernels tensor autograd nn diffusion dmdr tools bench test \
    -path test/fuzz/corpus -prune -o -path test/fuzz/regressions -prune -o -path test/fixtures -prune -o \
    -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print | LC_ALL=C sort)
[ -n "$files" ] || { echo "check_layers: no sources under $(pwd)"; exit 2; }

# (the names hold no blanks: they are the tree's own files)
# shellcheck disable=SC2086
LC_ALL=C awk -v layers="$layers" -v generated="$generated" '
function layer_of(path,    n, i, best) {
    best = ""
    for (i = 1; i <= nlayers; i++)
        if (index(path, layer[i] "/") == 1 && length(layer[i]) > length(best)) best = layer[i]
    return best
}
function dirname(path) { return sub(/\/[^\/]*$/, "", path) ? path : "." }
# a/b/../c -> a/c, ./a -> a
function normalize(path,    n, i, parts, out, k, res) {
    n = split(path, parts, "/")
    k = 0
    for (i = 1; i <= n; i++) {
        if (parts[i] == "" || parts[i] == ".") continue
        if (parts[i] == ".." && k > 0 && out[k] != "..") { k--; continue }
        out[++k] = parts[i]
    }
    res = ""
    for (i = 1; i <= k; i++) res = res (i > 1 ? "/" : "") out[i]
    return res
}
# the include as the compiler finds it: from the source root (-I.), else beside the file
function resolve(name, from,    p) {
    p = normalize(name)
    if (p in known) return p
    p = normalize(dirname(from) "/" name)
    if (p in known) return p
    return ""
}
BEGIN {
    nlayers = split(layers, layer, " ")
    for (i = 1; i <= nlayers; i++) rank[layer[i]] = i
    ngen = split(generated, gen, " ")
    for (i = 1; i <= ngen; i++) is_generated[gen[i]] = 1
    for (i = 1; i < ARGC; i++) { known[ARGV[i]] = 1; order[++nfiles] = ARGV[i] }
}
/^[ \t]*#[ \t]*include[ \t]*"/ {
    line = $0
    sub(/^[ \t]*#[ \t]*include[ \t]*"/, "", line)
    name = line
    sub(/".*/, "", name)
    includes++
    if (name in is_generated) next
    target = resolve(name, FILENAME)
    where = FILENAME ":" FNR
    if (target == "") {
        print "check_layers: " where ": includes \"" name "\", which is no file of the tree"
        failures++
        next
    }
    lf = layer_of(FILENAME); lt = layer_of(target)
    if (lf != "test" && rank[lt] > rank[lf]) {
        print "check_layers: " where ": includes " target ": " lf " (layer " rank[lf] \
              ") may not include " lt " (layer " rank[lt] "), a layer above it"
        failures++
    }
    # the file graph, and the folder graph with the first include behind each edge
    if (!((FILENAME, target) in fedge)) {
        fedge[FILENAME, target] = where " includes " target
        fsucc[FILENAME] = fsucc[FILENAME] SUBSEP target
    }
    if (lf != lt && !((lf, lt) in dedge)) {
        dedge[lf, lt] = where " includes " target
        dsucc[lf] = dsucc[lf] SUBSEP lt
    }
}
# Depth-first search over one graph (kind "f": files, "d": layer folders) without recursion;
# each back edge closes a cycle, printed with the include behind every step.
function find_cycles(kind, nodes, nnodes,    i, start, top, node, next_node, nxt, k, n, succ,
                     found, msg, why, j) {
    found = 0
    for (i = 1; i <= nnodes; i++) color[kind, nodes[i]] = 0
    for (i = 1; i <= nnodes; i++) {
        start = nodes[i]
        if (color[kind, start] != 0) continue
        top = 1; stack[1] = start; pos[1] = 1; color[kind, start] = 1
        while (top > 0) {
            node = stack[top]
            n = split(kind == "f" ? fsucc[node] : dsucc[node], succ, SUBSEP)
            k = ++pos[top]
            if (k > n) { color[kind, node] = 2; top--; continue }
            next_node = succ[k]
            if (next_node == "") continue
            if (color[kind, next_node] == 1) {
                for (j = top; stack[j] != next_node; j--) ;
                msg = "check_layers: include cycle between " (kind == "f" ? "files" : "folders") \
                      ": " stack[j]
                why = ""
                for (; j <= top; j++) {
                    nxt = j < top ? stack[j + 1] : next_node
                    msg = msg " -> " nxt
                    why = why (why == "" ? "" : "; ") \
                          (kind == "f" ? fedge[stack[j], nxt] : dedge[stack[j], nxt])
                }
                print msg " (" why ")"
                found++
            } else if (color[kind, next_node] == 0) {
                color[kind, next_node] = 1
                stack[++top] = next_node; pos[top] = 1
            }
        }
    }
    return found
}
END {
    cycles = find_cycles("f", order, nfiles) + find_cycles("d", layer, nlayers)
    failures += cycles
    if (failures) {
        print "check_layers: " failures " finding" (failures == 1 ? "" : "s") " in " nfiles \
              " files (0%: Checks: 1, Failures: 1, Errors: 0)"
        exit 1
    }
    print "check_layers: " nfiles " files, " includes " includes over " nlayers " layers: none " \
          "goes up a layer, no cycle (100%: Checks: 1, Failures: 0, Errors: 0)"
}
' $files
