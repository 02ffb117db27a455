#!/usr/bin/env bash
# Amazon EKS bootstrap script (body elided)
set -o errexit
