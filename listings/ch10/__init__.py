"""第10章 Feed Forward Network の役割のコード。"""
