"""Bad arguments raise Python exceptions with the CLI's one-line messages."""

import re
import subprocess

import gymnasium as gym
import pytest

import shoplab


def test_unknown_scenario():
    with pytest.raises(ValueError, match="neither a scenario file nor a shipped scenario"):
        shoplab.PricingEnv("pricng")


def test_a_bad_override_gets_the_cli_message(cli, small_pricing, tmp_path):
    file = small_pricing("good")
    text = open(file).read().replace("horizon = 8\n", "horizon = 8\nhorizn = 8\n")
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    cli_message = subprocess.run([cli, "run", str(bad)], capture_output=True, text=True).stderr.strip()
    with pytest.raises(ValueError) as e:
        shoplab.PricingEnv(file, overrides={"pricing.horizn": 8})
    assert "horizn" in str(e.value)
    # The same key and rule, worded the same, as the CLI's (the line is
    # where each put the key: the override goes at its table's end).
    unlined = lambda m: re.sub(r" \(line \d+\)", "", m)
    assert unlined(cli_message.split("bad.toml: ")[1]) == unlined(str(e.value).split("good.toml: ")[1])
    with pytest.raises(ValueError, match="pricing.horizon"):
        shoplab.PricingEnv(file, overrides={"pricing.horizon": -3})
    with pytest.raises(ValueError, match="not a scenario value"):
        shoplab.PricingEnv(file, overrides={"pricing.horizon": object()})


def test_wrong_family():
    with pytest.raises(ValueError, match="not pricing"):
        shoplab.PricingEnv("ads")


def test_actions_out_of_range_and_steps_after_the_end():
    env = gym.make("shoplab/Pricing-v0").unwrapped
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)
    env.reset(seed=0)
    for bad in [8, -1]:
        with pytest.raises(ValueError, match="outside the action space"):
            env.step(bad)
    with pytest.raises(TypeError):
        env.step("two")
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(3)
        done = terminated or truncated
    with pytest.raises(gym.error.ResetNeeded, match="reset"):
        env.step(3)
    slates = shoplab.RecommendationEnv(overrides={"recommendation.slate_size": 2})
    slates.reset(seed=0)
    with pytest.raises(ValueError, match="distinct"):
        slates.step([4, 4])
    with pytest.raises(ValueError, match="slate"):
        slates.step(4)


def test_a_batched_scenario_is_not_a_single_env():
    with pytest.raises(ValueError, match="VectorEnv"):
        shoplab.ShoplabEnv("recommendation")
