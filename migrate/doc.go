// Package migrate turns a gitlab-runner config.toml whose runners use docker+machine
// with the amazonec2 driver into ec2-executor settings and a runner config that calls
// ec2-executor as a custom executor, and says what became of every option.
//
// It never changes its input, never copies static AWS keys into any output (the
// manager's instance profile replaces them), and leaves a placeholder that `validate`
// rejects wherever it cannot know a value (a security group name it could not
// resolve to an id).
package migrate
