"""Every method from one pretrained model: the benchmark run, its report and its second views."""
