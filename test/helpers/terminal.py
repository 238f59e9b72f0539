# Runs a command under a pseudo-terminal, answers the first prompt containing a marker, prints the transcript.
# Usage: python3 pty.py MARKER ANSWER -- cmd args...   (exit status is the command's)
import os, pty, sys, time, select
marker, answer = sys.argv[1].encode(), sys.argv[2].encode()
cmd = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out, answered, deadline = b"", False, time.time() + 120
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if fd in r:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not answered and marker in out:
            time.sleep(0.4)  # after the prompt is shown and earlier input discarded
            os.write(fd, answer + b"\r")
            answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf8", "replace"))
sys.exit(os.waitstatus_to_exitcode(status))
