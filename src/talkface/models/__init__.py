"""Neural network modules, one per file; import from the module that defines a name (this package runs none of them,
so a stage that needs one model does not import, or depend on, every other):

    layers.py         ConvBlock, AudioEncoder, the 80x16 mel window        expert.py     SyncExpert (the interface)
    syncnet.py        SyncNet (Wav2Lip's expert)                          avsyncnet.py  AVSyncNet (P1's expert)
    expert_io.py      build_expert, save_expert, load_expert (by name)    generator.py  Generator (G_S and G_L)
    generator_io.py   save_generator, load_generator                      discriminator.py, vgg.py, inception.py,
    avhubert.py       AV-HuBERT (P2's metrics and sync loss)              lse_syncnet.py (syncnet_v2 for LSE)
"""
