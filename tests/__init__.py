"""Tests for the petnet_feeder integration."""
