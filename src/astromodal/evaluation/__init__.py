"""astromodal.evaluation"""
