# Stand-in for ansible-test's pip bootstrap script, which it downloads from
# ci-files.testing.ansible.com (not reachable from CI here). .ci/run puts it in ansible-test's
# cache (~/.ansible/test/cache/get_pip_<version>.py): the interpreter's own ensurepip installs
# pip, and the venv's pip is told to trust the system's CA bundle (ansible-test runs pip with a
# scrubbed environment, so PIP_CERT does not reach it).
import ensurepip
import os
import sys

ensurepip.bootstrap(upgrade=True)
bundle = "/etc/ssl/certs/ca-certificates.crt"
if os.path.exists(bundle):
    with open(os.path.join(sys.prefix, "pip.conf"), "w") as f:
        f.write("[global]\ncert = %s\n" % bundle)
