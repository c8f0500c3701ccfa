# nbgrader settings for the course "Freezing Layers in PyTorch" (written by `make assignments`).
import sys

c = get_config()  # noqa: F821 - nbgrader provides it
sys.path.insert(0, "@REPO_ROOT@")  # tools.kernels, from the course checkout
c.Execute.kernel_manager_class = "tools.kernels.LocalKernelManager"  # IPC kernels: no race for TCP ports
c.CourseDirectory.course_id = "@COURSE_ID@"
c.CourseDirectory.root = "@ROOT@"
c.Execute.timeout = 300  # seconds per cell; the longest course cell takes well under a minute
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
