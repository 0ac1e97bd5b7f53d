"""astromodal.training"""
