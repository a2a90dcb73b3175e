"""Helpers the end-to-end tests import: `from radixlm_testing import run_radixlm`."""
import subprocess


def run_radixlm(binary, *args, input_text=None, timeout=600):
    """Runs radixlm and returns the CompletedProcess; raises with stderr shown when it fails."""
    proc = subprocess.run([str(binary), *map(str, args)], input=input_text, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"radixlm {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc
