"""Images in the generated modules (templates/images.py.j2, train.py --arch/--preset/--accumulate, sample.py
image output): detection and value mapping of image arrays and folders, the PNG encoder, the large U-Net,
and one end-to-end run on 16x16x3 images with the papers' network size (train, resume, sample)."""
import json
import sys

import numpy as np
import pytest
from test_generated_scripts import generated_modules, module_ir, run_script, write_module

torch = pytest.importorskip("torch")
PIL_Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    return write_module(module_ir(), tmp_path_factory.mktemp("image_module"))


@pytest.fixture
def generated(module_dir):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with generated_modules(module_dir) as modules:
        yield modules
    torch.set_num_threads(threads)


def pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize(
    ("array", "layout", "low", "high"),
    [
        (pixels((5, 6, 8, 3)), "HWC", 0.0, 255.0),
        (pixels((5, 3, 6, 8)), "CHW", 0.0, 255.0),
        (pixels((5, 6, 8)), "HW", 0.0, 255.0),
        (pixels((5, 1, 6, 8)).astype(np.float32) / 255, "CHW", 0.0, 1.0),
        (pixels((5, 6, 8, 3)).astype(np.float64) / 127.5 - 1, "HWC", -1.0, 1.0),
    ],
)
def test_image_arrays_map_to_minus_one_one_and_back(generated, array, layout, low, high):
    images = generated.images
    assert images.is_image_array(array)
    mapped, info = images.images_from_array(array, "test")
    assert (info["layout"], info["low"], info["high"]) == (layout, low, high)
    channels_first = {"HWC": lambda: array.transpose(0, 3, 1, 2), "CHW": lambda: array,
                      "HW": lambda: array[:, None]}[layout]()
    assert mapped.shape == channels_first.shape and mapped.dtype == np.float32
    expected = 2 * (channels_first.astype(np.float64) - low) / (high - low) - 1
    assert np.abs(mapped - expected).max() < 1e-6
    assert mapped.min() >= -1 and mapped.max() <= 1
    back = images.to_data_range(mapped.astype(np.float64), info)
    assert back.shape == array.shape and back.dtype == array.dtype
    tolerance = 0 if array.dtype == np.uint8 else 1e-6
    assert np.abs(back.astype(np.float64) - array).max() <= tolerance


def test_arrays_that_are_not_images_keep_the_vector_path(generated, tmp_path):
    images, train = generated.images, generated.train
    wide = np.random.default_rng(0).normal(scale=3.0, size=(6, 3, 4, 4))  # floats beyond [-1, 1]
    assert not images.is_image_array(wide)
    assert not images.is_image_array(np.zeros((6, 5, 7)))  # rank 3 floats: vectors of shape (5, 7)
    np.save(tmp_path / "wide.npy", wide)
    samples, info = train.load_dataset(str(tmp_path / "wide.npy"), 0)
    assert info is None and np.array_equal(samples, wide)
    with pytest.raises(train.UsageError, match="--resolution applies to image data only"):
        train.load_dataset(str(tmp_path / "wide.npy"), 0, resolution=8)


def test_npz_and_npy_image_files_with_resolution(generated, tmp_path):
    train = generated.train
    array = pixels((4, 12, 16, 3))
    np.savez(tmp_path / "set.npz", images=array, labels=np.arange(4))
    np.save(tmp_path / "set.npy", array)
    for name in ("set.npz", "set.npy"):
        samples, info = train.load_dataset(str(tmp_path / name), 0, resolution=8)
        assert samples.shape == (4, 3, 8, 8) and info["layout"] == "HWC" and info["resolution"] == 8
        assert -1 <= samples.min() and samples.max() <= 1
    # The centre crop keeps columns 2..13 of 16; a resize to the same size is the crop itself.
    same, _ = train.load_dataset(str(tmp_path / "set.npy"), 0, resolution=12)
    expected = array[:, :, 2:14].transpose(0, 3, 1, 2) / 127.5 - 1
    assert np.abs(same - expected).max() < 1e-6
    np.savez(tmp_path / "two.npz", a=array, b=array)
    with pytest.raises(train.UsageError, match="one array or one named 'images'"):
        train.load_dataset(str(tmp_path / "two.npz"), 0)


def test_png_encoder_round_trips_through_pillow(generated, tmp_path):
    images = generated.images
    for image in (pixels((7, 5, 3)), pixels((7, 5)), pixels((4, 9, 1))):
        images.write_png(image, tmp_path / "x.png")
        decoded = np.asarray(PIL_Image.open(tmp_path / "x.png"))
        assert np.array_equal(decoded, image.reshape(decoded.shape))
    grid = images.image_grid(pixels((5, 4, 4, 3)), border=2)
    assert grid.shape == (2 * 6 + 2, 3 * 6 + 2, 3)
    assert np.array_equal(grid[2:6, 8:12], pixels((5, 4, 4, 3))[1])


def test_image_folder_is_decoded_cropped_and_resized(generated, tmp_path):
    train = generated.train
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i, size in enumerate([(20, 12), (12, 12), (16, 24)]):  # (width, height) of PIL
        PIL_Image.fromarray(pixels((size[1], size[0], 3), seed=i)).save(folder / ("sub" if i else ".") / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    samples, info = train.load_dataset(str(folder), 0, resolution=8, workers=0)
    assert samples.shape == (3, 3, 8, 8) and info["source"] == "folder" and info["dtype"] == "uint8"
    with pytest.raises(train.UsageError, match="different sizes"):
        train.load_dataset(str(folder), 0)
    same_size, _ = train.load_dataset(str(folder), 0, resolution=12)
    square = pixels((12, 12, 3), seed=1)  # the 12x12 image is its own centre crop, resized to itself
    assert any(np.abs(image - (square.transpose(2, 0, 1) / 127.5 - 1)).max() < 1e-6 for image in same_size)


def test_image_folder_without_pillow_says_so(generated, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    (tmp_path / "f").mkdir()
    with pytest.raises(generated.train.UsageError, match="needs Pillow"):
        generated.train.load_dataset(str(tmp_path / "f"), 0)


def test_large_unet_sizes_and_shapes(generated):
    model = generated.model
    for overrides, low, high in (({}, 50e6, 60e6), ({"channel_mult": [1, 2, 2, 2], "blocks": 2}, 35e6, 37e6)):
        network = model.build_backbone(model.default_backbone_config((3, 32, 32), "large", **overrides))
        count = sum(p.numel() for p in network.parameters())
        assert low < count < high, count
    small = model.build_backbone(model.default_backbone_config((3, 8, 8), "large", channels=16, blocks=1)).eval()
    torch.nn.init.normal_(small.conv_out.weight)
    x, log_sigma = torch.randn(2, 3, 8, 8), torch.randn(2)
    out = small(x, log_sigma)
    assert out.shape == x.shape and torch.isfinite(out).all()
    small.to(memory_format=torch.channels_last)
    assert torch.allclose(small(x, log_sigma), out, rtol=1e-4, atol=1e-4)  # same function, other layout
    with pytest.raises(ValueError, match="needs images"):
        model.default_backbone_config((2,), "large")


def test_presets_are_the_published_numbers_and_flags_override_them(generated):
    parse = generated.train.parse_args
    kac = parse(["--out", "r", "--preset", "kac-cifar10"])
    assert (kac.arch, kac.lr, kac.batch, kac.ema, kac.dropout, kac.blocks) == ("large", 2e-4, 128, 0.9999, 0.1, 2)
    pfgmpp = parse(["--out", "r", "--preset", "pfgmpp-cifar10", "--batch", "64"])
    assert (pfgmpp.lr, pfgmpp.dropout, pfgmpp.batch) == (1e-3, 0.13, 64)
    assert abs(pfgmpp.ema - 0.5 ** (512 / 500_000)) < 1e-12  # EMA half-life 0.5M images at batch 512
    with pytest.raises(generated.train.UsageError, match="--arch large"):
        parse(["--out", "r", "--blocks", "2"])
    with pytest.raises(generated.train.UsageError, match="--accumulate"):
        parse(["--out", "r", "--batch", "10", "--accumulate", "3"])


def test_gradient_accumulation_splits_the_batch(generated, tmp_path, monkeypatch):
    train = generated.train
    sizes = []
    original = train.flow_matching_loss

    def recording(network, process, y, generator=None, **options):  # options: train.py's loss settings
        sizes.append(y.shape[0])
        return original(network, process, y, generator=generator, **options)

    monkeypatch.setattr(train, "flow_matching_loss", recording)
    assert train.main(["--data", "moons", "--steps", "2", "--batch", "12", "--accumulate", "3",
                       "--n-toy", "100", "--log-every", "1", "--out", str(tmp_path / "run")]) == 0
    assert sizes == [4] * 6
    records = [json.loads(line) for line in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and all(r["samples_per_second"] > 0 for r in records)


@pytest.mark.slow
def test_large_unet_trains_resumes_and_samples_images_end_to_end(module_dir, tmp_path):
    """16x16x3 uint8 images, the Kac paper's network (36M parameters) in float32 on the CPU: two steps, a
    resumed third, then sample.py writing uint8 HWC samples, an image grid and one PNG per sample."""
    data = pixels((32, 16, 16, 3))
    np.save(tmp_path / "images.npy", data)
    run = tmp_path / "run"
    common = ["--out", run, "--log-every", "1", "--workers", "0"]
    run_script(module_dir, "train.py", "--data", tmp_path / "images.npy", "--preset", "kac-cifar10", "--batch", 4,
               "--steps", 2, *common, cwd=tmp_path)
    run_script(module_dir, "train.py", "--resume", "--steps", 3, *common, cwd=tmp_path)
    checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert checkpoint["step"] == 3 and checkpoint["backbone_config"]["kind"] == "unet-large"
    assert checkpoint["data_stats"]["image"]["layout"] == "HWC"
    records = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in records)
    out = tmp_path / "samples.npy"
    run_script(module_dir, "sample.py", "--ckpt", run, "--n", 5, "--steps", 3, "--out", out,
               "--save-images", tmp_path / "each", cwd=tmp_path)
    samples = np.load(out)
    assert samples.shape == (5, 16, 16, 3) and samples.dtype == np.uint8
    grid = np.asarray(PIL_Image.open(out.with_suffix(".png")))
    assert grid.shape == (2 * 18 + 2, 3 * 18 + 2, 3)
    assert np.array_equal(grid[2:18, 2:18], samples[0])  # the grid shows the samples as saved
    each = sorted((tmp_path / "each").glob("sample_*.png"))
    assert len(each) == 5 and np.array_equal(np.asarray(PIL_Image.open(each[4])), samples[4])


def test_data_stays_on_the_host_unless_it_fits_a_quarter_of_free_gpu_memory(generated, monkeypatch):
    fits, cuda = generated.train.fits_on_device, torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8_000, 16_000))
    assert fits(2_000, cuda) and not fits(2_001, cuda)
    assert fits(10**12, torch.device("cpu"))
