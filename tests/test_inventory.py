import pandas as pd
import pytest

from wildbench_assets.lib.expectations import validate_checks
from wildbench_assets.lib.inventory import (
    describe_object,
    describe_path,
    listing_rules,
    parse_coco_camera_traps,
    species_aliases,
)
from wildbench_assets.taxonomy import THESIS_SPECIES, Taxonomy, load_taxonomy

ALIASES = species_aliases([(s.code, s.scientific_name, s.common_name) for s in THESIS_SPECIES])


def test_taxonomy_matches_thesis_table_3_1():
    tax = Taxonomy()
    assert tax.class_names == ["bos", "caae", "caca", "can", "capi", "cer", "dam", "equ", "fel", "fsi", "gen", "her",
                               "lep", "lut", "lyn", "mafo", "mel", "mus", "ory", "ovar", "ovor", "rara", "sus", "vul"]
    assert tax.class_index("ovar") == 19 and "emp" in tax.species_codes and len(tax.species_codes) == 25
    assert tax.park_codes == {"snieves", "donana"}
    with pytest.raises(KeyError):
        tax.class_index("emp")


def test_taxonomy_extension_file_appends_without_moving_class_ids(tmp_path):
    path = tmp_path / "extra.yaml"
    path.write_text("species:\n  - {code: urs, scientific_name: Ursus arctos, common_name: brown bear}\n"
                    "parks:\n  - {code: somiedo, name: Somiedo}\n")
    tax = load_taxonomy(path)
    assert tax.class_index("vul") == 23 and tax.class_index("urs") == 24
    assert tax.park_codes == {"snieves", "donana", "somiedo"}
    path.write_text("species:\n  - {code: vul}\n")
    with pytest.raises(ValueError, match="unique"):
        load_taxonomy(path)
    path.write_text("species:\n  - {name: nameless}\n")
    with pytest.raises(ValueError, match="code"):
        load_taxonomy(path)


@pytest.mark.parametrize("key, park, species, camera", [
    ("snieves/ovar/C02/IMG_0001.JPG", "snieves", "ovar", "snieves/C02"),
    # SD-card layouts: the card folder repeats across cameras, so the camera is the whole folder path
    ("donana/lyn/D01/100RECNX/IMG_0001.JPG", "donana", "lyn", "donana/D01/100RECNX"),
    ("donana/lyn/D02/100RECNX/IMG_0001.JPG", "donana", "lyn", "donana/D02/100RECNX"),
    ("donana/sus/IMG_0002.jpg", "donana", "sus", "donana/sus"),
    ("donana/IMG_0003.jpg", "donana", "unknown", "donana/donana"),
    ("loose.jpg", "unknown", "unknown", "unknown/unknown"),
])
def test_path_convention(key, park, species, camera):
    assert describe_path(key) == {"park": park, "species": species, "camera": camera}


def test_coco_camera_traps_manifest_names_species_camera_and_sequence():
    manifest = {
        "images": [
            {"id": 1, "file_name": "cam7/a.jpg", "location": "L7", "seq_id": "s1", "datetime": "2020-01-01 00:00:00"},
            {"id": 2, "file_name": "cam7/b.jpg", "location": "L7", "seq_id": "s2"},
            {"id": 3, "file_name": "cam7/c.jpg", "location": 12},
        ],
        "annotations": [
            {"id": "a", "image_id": 1, "category_id": 5, "bbox": [1, 2, 3, 4]},
            {"id": "b", "image_id": 1, "category_id": 5, "bbox": [5, 6, 7, 8]},
            {"id": "c", "image_id": 2, "category_id": 0},
            {"id": "d", "image_id": 3, "category_id": 9},
        ],
        "categories": [{"id": 0, "name": "empty"}, {"id": 5, "name": "Red Fox"}, {"id": 9, "name": "okapi"}],
    }
    entries = parse_coco_camera_traps(manifest, "donana/manifest.json", ALIASES)
    first = entries["donana/cam7/a.jpg"]
    assert (first.species, first.camera, first.seq_id, len(first.boxes)) == ("vul", "L7", "s1", 2)
    assert entries["donana/cam7/b.jpg"].species == "emp"
    assert entries["donana/cam7/c.jpg"].species == "okapi"  # kept verbatim, reported as unknown downstream
    row = describe_object("donana/cam7/a.jpg", entries)
    assert (row["park"], row["species"], row["camera"],
            row["species_source"]) == ("donana", "vul", "donana/L7", "manifest")


def test_manifest_images_without_location_take_every_folder_below_the_park():
    manifest = {"images": [{"id": i, "file_name": name} for i, name in enumerate(
        ["D01/100RECNX/a.jpg", "D02/100RECNX/a.jpg", "lyn/cam1/b.jpg"])],
        "annotations": [{"id": i, "image_id": i, "category_id": 1} for i in range(3)],
        "categories": [{"id": 1, "name": "lyn"}]}
    entries = parse_coco_camera_traps(manifest, "donana/manifest.json", ALIASES)
    cameras = [describe_object(key, entries)["camera"] for key in sorted(entries)]
    assert cameras == ["donana/D01/100RECNX", "donana/D02/100RECNX", "donana/cam1"]  # a species folder is not one


def test_malformed_manifest_is_an_error():
    with pytest.raises(ValueError, match="COCO Camera Traps"):
        parse_coco_camera_traps({"annotations": []}, "manifest.json", ALIASES)


def _listing(paths, day="2026-01-02", park="donana"):
    return pd.DataFrame({"path": paths, "park": park, "species": "sus", "etag": "e", "bytes": 10,
                         "arrival_day": day})


def _failing(found) -> set[str]:
    return {check for check, results in found.items() if not all(r.success for r in results)}


def test_listing_rules_judge_one_partition():
    def judge(frame, rows=2, parks=("donana",), species=("sus",)):
        return _failing(validate_checks(frame, listing_rules(parks, species, rows, "donana", "2026-01-02")))

    assert judge(_listing(["donana/sus/a.jpg", "donana/sus/b.jpg"])) == set()
    assert judge(_listing(["donana/sus/a.jpg", "donana/sus/a.jpg"])) == {"unique_paths"}
    assert judge(_listing(["donana/sus/a.jpg", "donana/sus/b.jpg"]), rows=3) == {"listing_complete"}
    assert judge(_listing(["donana/sus/a.jpg", "donana/sus/b.jpg"], day="2026-01-03")) == {"listing_complete"}
    assert judge(_listing(["snieves/sus/a.jpg", "snieves/sus/b.jpg"])) == {"listing_complete"}  # not the park's
    assert judge(_listing(["donana/sus/a.jpg", "donana/sus/b.jpg"]), parks=(), species=()) == {"known_parks",
                                                                                             "known_species"}


def test_listing_rules_judge_a_batch_row_by_its_own_partition():
    batch = _listing(["donana/sus/a.jpg", "donana/sus/b.jpg"]).assign(partition_park="donana",
                                                                      partition_day=["2026-01-02", "2026-01-03"])
    found = validate_checks(batch, listing_rules(["donana"], ["sus"], 2))
    assert _failing(found) == {"listing_complete"}
    assert _failing(validate_checks(batch.assign(partition_day="2026-01-02"), listing_rules(["donana"], ["sus"], 2))) \
        == set()
