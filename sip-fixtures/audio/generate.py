#!/usr/bin/env python3
"""Generates the labelled AMD clip set, reproducibly and offline, with espeak-ng and sox.

Usage: generate.py OUT_DIR
       generate.py --demo OUT_DIR   (just demo-human.wav and demo-machine.wav, for `outdial demo`)

Writes OUT_DIR/*.wav (8 kHz mono G.711 µ-law) and OUT_DIR/labels.csv with the columns
file,label,kind,voice,speed,level_db,snr_db where label is one of
  human    a live person answering: short greetings ("Hello?", "Yes?", "Hello, who is this?"),
           some repeated after a pause, then silence while they wait for us
  machine  personal and carrier voicemail greetings, some ending in a beep
  silence  dead air or line noise only (no speech)
Every run with the same espeak-ng and sox versions gives the same files (sox -R fixes the
noise generator's seed; nothing else is random). Needs Debian's espeak-ng and sox.
"""

import csv
import itertools
import os
import subprocess
import sys
import tempfile

CLIP_SECONDS = 6.0

VOICES = [
    "en-us", "en-us+f3", "en-gb", "en-gb+f4", "en-gb-scotland+m3", "en-029+f2",
    "en-us-nyc+m7", "en-gb-x-rp+f5",
]
SPEEDS = [140, 170, 200]
LEVELS = [-3, -9, -15]            # peak level of the speech, dBFS
SNRS = [None, 20, 10]             # speech RMS over noise RMS, dB (None: clean)
NOISES = ["pinknoise", "brownnoise", "whitenoise"]

HUMAN = [
    "Hello?",
    "Yes?",
    "Hello, who is this?",
    "Hi.",
    "Yeah, hello?",
    "Good afternoon.",
    "Speaking.",
    "Hello, yes?",
    "Hi, this is Mike.",
    "Uh, hello?",
    "Allo?",
    "Hello, Dave speaking.",
    "Who's calling?",
]
# A greeting, a pause, and the same person again: (first, pause seconds, second).
HUMAN_TWICE = [
    ("Hello?", 1.4, "Hello?"),
    ("Yes?", 1.6, "Hello, anyone there?"),
    ("Hello.", 1.2, "Who is this?"),
]
MACHINE = [
    "Hi, you've reached Sarah. I can't take your call right now, so please leave a message after the tone.",
    "Hello, this is John Smith. Sorry I missed you. Leave your name and number and I will call you back.",
    "You have reached the voicemail of Maria Garcia. Please leave a message.",
    "Hey, it's Tom. I'm not around right now. You know what to do.",
    "The person you are calling is not available. Please leave a message after the tone.",
    "The number you have dialled is not available at the moment. Please leave your message after the beep.",
    "Your call has been forwarded to an automated voice messaging system. Four one five, five five five, zero one two three, is not available. At the tone, please record your message.",
    "Thank you for calling Acme Plumbing. Our office is closed. Please leave a message and we will return your call.",
    "Hi, you've reached the Johnsons. We can't come to the phone right now. Please leave a message.",
    "Hello. You have reached extension two zero four. I am either on the phone or away from my desk.",
]


def run(*args):
    if args[0] == "sox":
        # -R: repeatable random numbers (noise); -D: no dither, which would add random noise.
        args = ("sox", "-R", "-D") + args[1:]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def speak(tmp, name, text, voice, speed, level):
    raw = os.path.join(tmp, name + "-raw.wav")
    out = os.path.join(tmp, name + ".wav")
    run("espeak-ng", "-v", voice, "-s", str(speed), "-w", raw, text)
    # 8 kHz mono, trimmed of espeak's leading/trailing silence, peak-normalised to `level`.
    run("sox", raw, "-r", "8000", "-c", "1", "-b", "16", out,
        "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse",
        "gain", "-n", str(level))
    return out


def rms_db(path):
    """RMS level of a file in dBFS, from `sox stats`."""
    p = subprocess.run(["sox", path, "-n", "stats"], check=True, capture_output=True, text=True)
    for line in p.stderr.splitlines():
        if line.startswith("RMS lev dB"):
            return float(line.split()[3])
    raise RuntimeError("no RMS level for " + path)


def silence(tmp, name, seconds):
    out = os.path.join(tmp, name + ".wav")
    run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", out, "trim", "0", "%.3f" % seconds)
    return out


def beep(tmp, level):
    out = os.path.join(tmp, "beep.wav")
    run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", out, "synth", "0.5", "sine", "1000",
        "gain", "-n", str(level))
    return out


def finish(tmp, parts, out_path, noise, snr, speech_rms):
    """Concatenates parts, pads/cuts to CLIP_SECONDS, mixes noise whose RMS is `snr` dB
    below the speech RMS (`speech_rms`; -45 dBFS for clips without speech), writes µ-law."""
    clean = os.path.join(tmp, "clean.wav")
    run("sox", *parts, clean, "pad", "0", "%.1f" % CLIP_SECONDS, "trim", "0", "%.1f" % CLIP_SECONDS)
    mixed = clean
    if noise is not None:
        n = os.path.join(tmp, "noise.wav")
        raw = os.path.join(tmp, "noise-raw.wav")
        run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", raw, "synth",
            "%.1f" % CLIP_SECONDS, noise, "gain", "-n", "-20")
        gain = speech_rms - snr - rms_db(raw)
        run("sox", raw, n, "gain", "%.2f" % gain)
        mixed = os.path.join(tmp, "mixed.wav")
        run("sox", "-m", "-v", "1", clean, "-v", "1", n, mixed)
    run("sox", mixed, "-r", "8000", "-c", "1", "-e", "u-law", out_path)


def demo(out_dir):
    """Two 8 s clips for the demo far end: a person answering, a voicemail greeting + beep."""
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        parts = [silence(tmp, "lead", 0.4), speak(tmp, "say", "Hello?", "en-us", 170, -6)]
        finish(tmp, parts, os.path.join(out_dir, "demo-human.wav"), None, None, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        parts = [silence(tmp, "lead", 0.4),
                 speak(tmp, "say", MACHINE[0], "en-gb+f4", 170, -6),
                 silence(tmp, "gap", 0.3), beep(tmp, -9)]
        finish(tmp, parts, os.path.join(out_dir, "demo-machine.wav"), None, None, 0.0)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--demo":
        demo(sys.argv[2])
        return
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    # Parameter combinations cycle deterministically so every voice, speed, level and SNR
    # meets every kind of clip.
    combos = itertools.cycle(itertools.product(VOICES, SPEEDS, LEVELS, SNRS))
    noise_cycle = itertools.cycle(NOISES)
    lead_cycle = itertools.cycle([0.2, 0.4, 0.6, 0.9, 0.3])

    def add(label, kind, make):
        voice, speed, level, snr = next(combos)
        noise = next(noise_cycle) if snr is not None else None
        name = "%s-%03d.wav" % (label, sum(1 for r in rows if r[1] == label) + 1)
        with tempfile.TemporaryDirectory() as tmp:
            parts = make(tmp, voice, speed, level)
            speech = [p for p in parts if os.path.basename(p) in ("say.wav", "a.wav", "b.wav")]
            speech_rms = rms_db(speech[0]) if speech else -45.0 + (snr or 0)
            finish(tmp, parts, os.path.join(out_dir, name), noise, snr, speech_rms)
        if label == "silence":
            kind = "dead-air" if noise is None else "noise-only"
        rows.append((name, label, kind, voice, speed, level, "" if snr is None else snr))

    for rep in range(8):
        for text in HUMAN:
            add("human", "greeting",
                lambda tmp, v, s, l, text=text: [silence(tmp, "lead", next(lead_cycle)),
                                                 speak(tmp, "say", text, v, s, l)])
    for rep in range(4):
        for first, pause, second in HUMAN_TWICE:
            add("human", "repeat",
                lambda tmp, v, s, l, a=first, p=pause, b=second: [
                    silence(tmp, "lead", next(lead_cycle)), speak(tmp, "a", a, v, s, l),
                    silence(tmp, "gap", p), speak(tmp, "b", b, v, s, l)])
    for rep in range(9):
        for i, text in enumerate(MACHINE):
            with_beep = (rep + i) % 2 == 0
            add("machine", "greeting+beep" if with_beep else "greeting",
                lambda tmp, v, s, l, text=text, wb=with_beep: [
                    silence(tmp, "lead", next(lead_cycle)), speak(tmp, "say", text, v, s, l)]
                + ([silence(tmp, "gap", 0.3), beep(tmp, l - 3)] if wb else []))
    for rep in range(12):
        # Dead air (with the odd click-free hiss) and noise-only lines.
        add("silence", None, lambda tmp, v, s, l: [silence(tmp, "all", 0.1)])

    with open(os.path.join(out_dir, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "kind", "voice", "speed", "level_db", "snr_db"])
        w.writerows(rows)
    print("wrote %d clips to %s" % (len(rows), out_dir))


if __name__ == "__main__":
    main()
