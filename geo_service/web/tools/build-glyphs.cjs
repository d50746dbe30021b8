#!/usr/bin/env node
/*
 * Builds MapLibre glyph PBFs (SDF, 24 px, 256 code points per file) from a font installed
 * on this machine, with fontnik (mapbox/node-fontnik, prebuilt N-API binary from npm).
 *
 *   node build-glyphs.cjs FONT_FILE "FACE NAME" OUT_DIR [--skip-ideographs]
 *
 * Writes OUT_DIR/<FACE NAME>/<start>-<end>.pbf for every range in which the face has a
 * glyph, then OUT_DIR/<FACE NAME>/.complete.  A font collection (.ttc) holds several faces
 * and fontnik writes one font stack per face into each range; only FACE NAME's stack is kept
 * (a tenth of the size for Noto Sans CJK).  Idempotent: an existing complete build of the
 * same font file (size + mtime) is left alone.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const fontnik = require('fontnik');

function readVarint(buf, pos) {
    let value = 0;
    let shift = 0;
    for (;;) {
        const byte = buf[pos++];
        value += (byte & 0x7f) * 2 ** shift;
        if (byte < 0x80) return [value, pos];
        shift += 7;
    }
}

function writeVarint(value) {
    const out = [];
    while (value >= 0x80) {
        out.push((value % 0x80) | 0x80);
        value = Math.floor(value / 0x80);
    }
    out.push(value);
    return Buffer.from(out);
}

/* Fields of one protobuf message as [field number, wire type, payload (bytes or number)]. */
function fields(buf) {
    const out = [];
    let pos = 0;
    while (pos < buf.length) {
        let key;
        [key, pos] = readVarint(buf, pos);
        const field = Math.floor(key / 8);
        const wire = key % 8;
        if (wire === 2) {
            let len;
            [len, pos] = readVarint(buf, pos);
            out.push([field, wire, buf.subarray(pos, pos + len)]);
            pos += len;
        } else if (wire === 0) {
            let v;
            [v, pos] = readVarint(buf, pos);
            out.push([field, wire, v]);
        } else {
            throw new Error(`unexpected protobuf wire type ${wire}`);
        }
    }
    return out;
}

/* The glyphs message keeping only the font stack called `face`, and its glyph count. */
function keepFace(pbf, face) {
    for (const [field, wire, stack] of fields(pbf)) {
        if (field !== 1 || wire !== 2) continue;
        const inner = fields(stack);
        const name = inner.find(([f]) => f === 1);
        if (!name || name[2].toString('utf8') !== face) continue;
        const glyphs = inner.filter(([f]) => f === 3).length;
        return [Buffer.concat([writeVarint(1 * 8 + 2), writeVarint(stack.length), stack]), glyphs];
    }
    return [null, 0];
}

/* CJK ideographs, kana and hangul: MapLibre GL JS draws these from the browser's own fonts
 * (localIdeographFontFamily), so a browser-only deployment may skip them. */
function isIdeographRange(start) {
    const end = start + 255;
    const blocks = [[0x3040, 0x30ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xac00, 0xd7af],
        [0xf900, 0xfaff]];
    return blocks.some(([lo, hi]) => start >= lo && end <= hi);
}

function rangeOf(font, start) {
    return new Promise((resolve, reject) => {
        fontnik.range({ font, start, end: start + 255 }, (err, data) => (err ? reject(err) : resolve(data)));
    });
}

async function main() {
    const args = process.argv.slice(2);
    const skipIdeographs = args.includes('--skip-ideographs');
    const [fontFile, face, outDir] = args.filter((a) => !a.startsWith('--'));
    if (!fontFile || !face || !outDir) {
        console.error('usage: build-glyphs.cjs FONT_FILE "FACE NAME" OUT_DIR [--skip-ideographs]');
        process.exit(2);
    }
    const stat = fs.statSync(fontFile);
    const signature = JSON.stringify({ font: path.resolve(fontFile), size: stat.size,
        mtime: stat.mtimeMs, skipIdeographs });
    const dir = path.join(outDir, face);
    const stamp = path.join(dir, '.complete');
    if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === signature) return;
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    const font = fs.readFileSync(fontFile);
    const starts = [];
    for (let s = 0; s < 65536; s += 256) if (!(skipIdeographs && isIdeographRange(s))) starts.push(s);
    let written = 0;
    let next = 0;
    async function worker() {
        while (next < starts.length) {
            const start = starts[next++];
            const [pbf, glyphs] = keepFace(await rangeOf(font, start), face);
            if (pbf === null && start === 0) throw new Error(`${fontFile} has no face called "${face}"`);
            if (glyphs > 0) {
                fs.writeFileSync(path.join(tmp, `${start}-${start + 255}.pbf`), pbf);
                written += 1;
            }
        }
    }
    await Promise.all([worker(), worker()]);
    fs.writeFileSync(path.join(tmp, '.complete'), signature);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    console.log(`glyphs: ${written} ranges of "${face}" in ${dir}`);
}

main().catch((err) => {
    console.error(`build-glyphs: ${err.message}`);
    process.exit(1);
});
