"""Training AsyncVLA: stage 1 (unified SFM/AFM flow matching, history conditioning, time-misalignment
sampling) and stage 2 (confidence rater on the frozen model), with checkpoints and resume."""
