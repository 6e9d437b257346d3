"""The people of the corpus: one identity = one flite voice setting + one face crop.

Keeping voice and face fixed per identity across every source is what makes
speaker re-identification and cross-scene linking answerable from the data.
The demo set uses the real faces that pass the Haar check (see ``faces.py``);
the large set multiplies voices with pitch/rate variants and, because only a
handful of real faces ship in packages, reuses faces with a mirrored/tinted
variant so that no two identities in one scene share a base face.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Voice:
    flite_voice: str
    f0: float | None = None  # int_f0_target_mean; None keeps the voice's own pitch
    stretch: float = 1.0  # duration_stretch: > 1 speaks slower

    def flite_args(self) -> list[str]:
        args = ["-voice", self.flite_voice]
        if self.f0 is not None:
            args += ["--setf", f"int_f0_target_mean={self.f0:g}"]
        if self.stretch != 1.0:
            args += ["--setf", f"duration_stretch={self.stretch:g}"]
        return args

    def describe(self) -> str:
        f0 = "default" if self.f0 is None else f"{self.f0:g}"
        return f"{self.flite_voice} f0={f0} stretch={self.stretch:g}"


@dataclass(frozen=True)
class Identity:
    id: str  # stable corpus-wide id, e.g. "P03"
    name: str
    gender: str  # "m" / "f", as vox2_meta.csv writes it
    voice: Voice
    face: str  # key into faces.FACE_SOURCES
    face_variant: int = 0  # 0: the crop as shipped; >0: mirrored/tinted copies (large corpus only)
    gain_db: float = 0.0  # loudness offset so speakers are not all equally loud

    @property
    def ami_id(self) -> str:
        # AMI speaker ids look like FEE005 / MEE006 (gender, site, number).
        return f"{self.gender.upper()}EE{int(self.id[1:]):03d}"

    @property
    def vox_id(self) -> str:
        return f"id{int(self.id[1:]):05d}"

    @property
    def vgg_id(self) -> str:
        return f"n{int(self.id[1:]):06d}"

    def to_json(self) -> dict:
        d = asdict(self)
        d["voice"] = self.voice.describe()
        d["voice_params"] = asdict(self.voice)
        d.update(ami_id=self.ami_id, vox_id=self.vox_id, vgg_id=self.vgg_id)
        return d


# Faces come from the insightface group photo (the Friends cast), skimage's astronaut
# (Eileen Collins), matplotlib's Grace Hopper and insightface's Tom Hanks sample.
# Joey's three-quarter profile is not found by Haar, so he has no identity.
DEMO_IDENTITIES = [
    Identity("P01", "Rachel", "f", Voice("slt", 185, 1.0), "rachel", gain_db=0.0),
    Identity("P02", "Ross", "m", Voice("rms", None, 1.0), "ross", gain_db=-1.0),
    Identity("P03", "Monica", "f", Voice("slt", 215, 0.92), "monica", gain_db=1.0),
    Identity("P04", "Chandler", "m", Voice("awb", None, 0.95), "chandler", gain_db=0.5),
    Identity("P05", "Phoebe", "f", Voice("slt", 155, 1.12), "phoebe", gain_db=-0.5),
    Identity("P06", "Tom", "m", Voice("kal16", 105, 1.05), "tom", gain_db=0.0),
    Identity("P07", "Eileen", "f", Voice("slt", 240, 1.04), "eileen", gain_db=-1.5),
    Identity("P08", "Grace", "f", Voice("slt", 135, 1.22), "grace", gain_db=1.5),
]

_LARGE_NAMES_F = ["Ada", "Bea", "Cleo", "Dana", "Ella", "Fay", "Gina", "Hana", "Iris", "Jill", "Kate", "Lena",
                  "Mina", "Nora", "Olga", "Pia", "Rosa", "Sara", "Tess", "Uma", "Vera", "Wren", "Yara", "Zoe"]
_LARGE_NAMES_M = ["Abe", "Ben", "Carl", "Dev", "Eli", "Finn", "Gus", "Hugo", "Ivan", "Jack", "Kai", "Liam",
                  "Max", "Ned", "Omar", "Paul", "Raj", "Sam", "Ted", "Ugo", "Vic", "Walt", "Yuri", "Zack"]


def large_identities(face_keys_f: list[str], face_keys_m: list[str], count: int = 48) -> list[Identity]:
    """Demo identities first, then new voices from pitch/rate grids of each flite voice.

    Faces cycle through the base crops of the matching gender; the cycle number is the
    face variant, so identities that share a base face always look different.
    """
    out = list(DEMO_IDENTITIES)
    used = {i.voice for i in out}
    female = [Voice("slt", f0, st) for st in (0.9, 1.0, 1.1, 1.2) for f0 in (130, 150, 170, 195, 220, 245)]
    male = ([Voice("awb", f0, st) for st in (0.9, 1.05, 1.2) for f0 in (95, 110, 125, 140)]
            + [Voice("kal16", f0, st) for st in (0.95, 1.1) for f0 in (85, 100, 120, 135)]
            + [Voice("rms", None, st) for st in (0.88, 1.12, 1.25)]
            + [Voice("kal", f0, st) for st in (1.0,) for f0 in (90, 115)])
    female = [v for v in female if v not in used]
    male = [v for v in male if v not in used]
    nf = nm = 0
    n = len(out)
    while len(out) < count and (female or male):
        n += 1
        take_f = (n % 2 == 1 and female) or not male
        if take_f:
            voice, name, keys, k = female.pop(0), _LARGE_NAMES_F[nf % 24], face_keys_f, nf
            nf += 1
        else:
            voice, name, keys, k = male.pop(0), _LARGE_NAMES_M[nm % 24], face_keys_m, nm
            nm += 1
        face = keys[k % len(keys)]
        variant = 1 + k // len(keys)
        gain = ((n * 7) % 5 - 2) * 0.75
        out.append(Identity(f"P{n:02d}", name, "f" if take_f else "m", voice, face, variant, gain))
    return out
